"""One gate per account, and an optional pace: how a client keeps to the vendor's rate limit.

A 429 (or a 503 with ``Retry-After``) is the server's word that the *account* is over its limit, not
only the request that got it. So it closes the account's :class:`Gate` for the time it names, and
every request of that account waits there, whichever client of the process sends it. When the gate
opens, its waiters go through spread over :data:`RELEASE_WINDOW`, never all at once: released
together they would make the next 429 at once, and a batch would stall. They go in the order they
came (the oldest at the opening time, each other in its own slot of the window, at a random moment
in it; a request that comes while they go through goes after them, at the window's end), and a
waiter keeps its place when the gate closes again before its moment: drawn afresh at every closure,
an unlucky request could wait past its POST's deadline while later ones went through.

The account is the API root plus the token's identity: the value of a fixed token (kept only as a
keyed hash, so no key can show a token in a repr or a log), or the :class:`RefreshingToken` object
itself (its refresh chain: the access token changes, the account does not). Clients with the same
account and the same clock share one gate; the registry holds gates weakly, so a gate lives as long
as a client that uses it.

A gate also learns a pace from its 429s (:class:`LearnedPace`): the vendor documents no limits, so
a client told no rate finds the account's. Until the first 429 nothing is paced; after it the
account's requests are spaced at a rate estimated from the answers that came before it, which
grows a little every second and is cut at the next 429. Reopened at full speed, a batch would
empty the server's burst at once and meet the next 429: closed and reopened again and again, it ran
at half the server's rate or less, and a tenth of its requests were refused.

A :class:`Pacer` (``AdultWorkClient(max_rate=...)``) spaces a client's requests out to a fixed rate
with a small burst, for a client whose limit is known, so that it seldom meets a 429 at all. It is
GCRA (the generic cell rate algorithm): each request reserves the next slot under no ``await``, so
concurrent requests get slots in turn, and the clock is injected, so a test can count requests per
second of virtual time. (aiolimiter's leaky bucket would pace as well, but it reads the event loop's
clock and schedules its own wake-ups, so its waits could be neither recorded nor run in virtual time.)

Invariants:

- A request that finds the gate open and no pace learnt pays two attribute reads, and its answer
  is counted (a clock read) for the pace's first estimate; nothing else is done.
- Only a 429 that finds the gate open changes the pace: the answers of requests that were already
  on their way when it closed say nothing new.
- A waiter never goes through before the gate's opening time; if the gate is closed again while it
  waits, it waits again, ahead of every request that came after it.
- A closure never shortens one already in force.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
import weakref
from collections.abc import Hashable
from typing import Any, Protocol

from ._clock import Clock

__all__ = ["RELEASE_WINDOW", "Account", "Gate", "LearnedPace", "Pacer", "account_gate"]

#: Waiters of a gate that opens go through over this many seconds, each at a random moment in it.
#: One second: ``Retry-After`` speaks in whole seconds, so this spreads over the resolution it has.
RELEASE_WINDOW = 1.0


#: A learnt pace grows by this share a second while no 429 comes (compounding).
PACE_GROWTH = 0.02
#: A 429 that comes within QUICK_429 seconds of the gate's opening: the pace was far too fast, halve it.
PACE_BACK_OFF = 0.5
QUICK_429 = 2.0
#: A later 429: the pace had crept just over the limit, take a tenth off.
PACE_DECREASE = 0.9
#: A first 429 teaches a pace only after this many answers in the second or two before it: with
#: fewer (a web backend's occasional request, a 429 as the first answer), the account is over its
#: limit through others' requests, and the gate alone holds this process back.
LEAST_EVIDENCE = 10
#: Nor is any pace under this: a request every ten seconds at worst.
SLOWEST_PACE = 0.1
_COUNT_WINDOW = 1.0
_SHORTEST_COUNT = 0.05


class Gate:
    """Closed after a 429 (or a 503 with ``Retry-After``) until the time the server named.

    Args:
        clock: the clock its times are read on.
        rng: where the release moments come from (inject one to check them).
        release_window: see :data:`RELEASE_WINDOW`.
    """

    def __init__(
        self, clock: Clock, *, rng: random.Random | None = None, release_window: float = RELEASE_WINDOW
    ) -> None:
        self.clock = clock
        self.rng = rng or random.Random()
        self.release_window = release_window
        #: When the gate opens, on :attr:`clock`; 0 while it is open.
        self.opens_at = 0.0
        #: How many times it was closed (for tests and metrics).
        self.closures = 0
        #: How many requests wait at it now.
        self.waiting = 0
        self._tickets = itertools.count()
        self._queue: list[int] = []  # the waiters' tickets, in arrival order
        self._opening: tuple[float, tuple[int, ...]] = (0.0, ())  # an opening, and its waiters in order
        #: The account's pace, learnt from its 429s (see :class:`LearnedPace`).
        self.pace = LearnedPace(clock)

    def __repr__(self) -> str:
        return f"<Gate opens_at={self.opens_at:.3f} closures={self.closures}>"

    def close(self, seconds: float) -> None:
        """Keep every request of the account back for ``seconds`` from now (or longer, if it is
        closed for longer already)."""
        already_closed = self.is_closed()
        until = self.clock.now() + max(0.0, seconds)
        if until > self.opens_at:
            self.opens_at = until
        self.closures += 1
        if not already_closed:  # the other answers of requests already on their way say no more
            self.pace.slow_down(self.opens_at)

    def is_closed(self) -> bool:
        """Whether a request arriving now would wait."""
        return bool(self.opens_at) and self.clock.now() < self.opens_at

    async def wait(self) -> float:
        """Return once the gate is open and this waiter's moment has come; the seconds waited."""
        if not self.opens_at:
            return 0.0
        ticket = next(self._tickets)
        self._queue.append(ticket)  # tickets grow: appending keeps the queue in order
        self.waiting += 1
        try:
            return await self._wait_turn(ticket)
        finally:
            del self._queue[bisect.bisect_left(self._queue, ticket)]
            self.waiting -= 1

    async def _wait_turn(self, ticket: int) -> float:
        waited = 0.0
        while self.opens_at:
            opens_at = self.opens_at
            now = self.clock.now()
            if now >= opens_at:
                behind = opens_at + self.release_window - now
                if len(self._queue) > 1 and behind > 0:
                    # The waiters of this opening are still going through, each in its slot: a
                    # newcomer goes after them, at the window's end, not ahead of them.
                    await self.clock.sleep(behind)
                    waited += behind
                    if self.opens_at <= opens_at:
                        break
                    continue  # closed again meanwhile: wait for that opening, in place
                self.opens_at = 0.0  # open: the next request pays one attribute read again
                break
            pause = opens_at - now
            await self.clock.sleep(pause)
            waited += pause
            if self.opens_at > opens_at:
                continue  # closed again meanwhile, for longer: wait for that opening, in place
            # Open now. The oldest waiter goes at once; each other, in its own slot of the window
            # by its place among the waiters of this opening, at a random moment of that slot. A
            # lone request waits no longer than the server asked.
            if self._opening[0] != opens_at:  # the first to wake: the order of this opening
                self._opening = (opens_at, tuple(self._queue))
            order = self._opening[1]
            place = bisect.bisect_left(order, ticket)
            if place:
                # A waiter that came after the order was taken (the first woke a little early, as
                # an event loop may within its clock's resolution) takes the last slot.
                slots = max(1, len(order) - 1)
                spread = self.release_window * (min(place, slots) - 1 + self.rng.random()) / slots
                await self.clock.sleep(spread)
                waited += spread
            if self.opens_at <= opens_at:
                # Not closed again before this waiter's moment came. Judged by the closure, not by
                # reading the clock again: a sleep that returns on time (or early, on a clock that
                # only records waits) must not make the waiter sleep again and again.
                break
        return waited


class Pacer:
    """At most ``rate`` requests a second, after a burst of ``burst``: GCRA, on an injected clock.

    The burst is a second's worth of requests by default, between 1 and 10."""

    def __init__(self, rate: float, clock: Clock, *, burst: int | None = None) -> None:
        if isinstance(rate, bool) or not (isinstance(rate, int | float) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"max_rate must be a positive number of requests per second, got {rate!r}")
        if burst is None:
            burst = max(1, min(10, int(rate)))
        if burst < 1:
            raise ValueError(f"a burst must be at least 1, got {burst!r}")
        self.rate = float(rate)
        self.burst = burst
        self.clock = clock
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._next = -math.inf  # GCRA's theoretical arrival time

    def __repr__(self) -> str:
        return f"<Pacer {self.rate:g}/s burst {self.burst}>"

    def interval(self, now: float) -> float:
        """The seconds between two slots, at ``now``."""
        return self._interval

    async def take(self) -> bool:
        """Wait for this request's slot; True if it had to wait."""
        now = self.clock.now()
        arrival = max(self._next, now)
        self._next = arrival + self.interval(now)  # reserved before any await: slots are taken in turn
        start = arrival - self._tolerance
        if start <= now:
            return False
        await self.clock.sleep(start - now)
        return True


class LearnedPace(Pacer):
    """The account's pace, learnt from its 429s, for clients that were told no rate.

    None until a 429 comes after at least :data:`LEAST_EVIDENCE` answers in the last second or two:
    then the rate of those answers, halved (a batch that met the limit was over it, and the
    server's burst flattered the estimate). From the moment the gate opens it grows by
    :data:`PACE_GROWTH` a second, compounding; the next 429 takes it down to :data:`PACE_BACK_OFF`
    of its rate if it came within :data:`QUICK_429` seconds of the opening (still far too fast),
    else to :data:`PACE_DECREASE` of it. So a batch settles just under the
    server's limit, meets a 429 now and then as the pace creeps up, and a server whose limit is
    lifted is soon not paced at all. Slots are given one after another, without a burst.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.burst = 1
        self._tolerance = 0.0
        self._next = -math.inf
        #: Requests a second at :attr:`since`; None until the first 429.
        self.rate: float | None = None  # type: ignore[assignment]
        #: When the rate was set (the opening of the gate the 429 closed).
        self.since = 0.0
        self._window_start = -math.inf  # answers before the first 429, in windows of a second
        self._counted = 0
        self._previous = 0

    def __repr__(self) -> str:
        return f"<LearnedPace {self.rate if self.rate is None else round(self.rate, 2)}/s>"

    def rate_at(self, now: float) -> float:
        """The pace at ``now``, in requests a second (only once a rate was learnt)."""
        assert self.rate is not None
        return self.rate * math.pow(1.0 + PACE_GROWTH, max(0.0, now - self.since))

    def interval(self, now: float) -> float:
        return 1.0 / self.rate_at(now)

    def answered(self) -> None:
        """An answer came (counted until the first 429, for the first estimate)."""
        now = self.clock.now()
        age = now - self._window_start
        if age >= _COUNT_WINDOW:
            self._previous = self._counted if age < 2 * _COUNT_WINDOW else 0
            self._window_start = now
            self._counted = 0
        self._counted += 1

    def slow_down(self, opens_at: float) -> None:
        """A 429 closed the gate until ``opens_at``: learn a rate, or lower the one learnt."""
        now = self.clock.now()
        if self.rate is None:
            answers = self._previous + self._counted
            if answers < LEAST_EVIDENCE:
                return  # too few answers to tell a rate: the 429 is not of this process's making
            counted = max(now - self._window_start, _SHORTEST_COUNT)
            span = _COUNT_WINDOW + counted if self._previous else counted
            rate = answers / span * PACE_BACK_OFF
        else:
            factor = PACE_BACK_OFF if now - self.since < QUICK_429 else PACE_DECREASE
            rate = self.rate_at(now) * factor
        self.rate = max(rate, SLOWEST_PACE)
        self.since = opens_at


_GATES: weakref.WeakValueDictionary[tuple[Any, ...], Gate] = weakref.WeakValueDictionary()


class Account(Protocol):
    """What names an account's holder (a token provider): ``account``, hashable, never a secret."""

    @property
    def account(self) -> Hashable: ...


def account_gate(root: str, token: Account, clock: Clock) -> Gate:
    """The gate of the account (``root``, ``token``) on ``clock``, shared with every client of the
    process that has the same account and clock.

    Args:
        root: the API root (``base_url`` without a trailing slash).
        token: the client's token provider: a fixed token is known by a keyed hash of its value,
            any other provider by the object itself.
    """
    key = (root.lower(), token.account, clock)
    gate = _GATES.get(key)
    if gate is None:
        gate = _GATES[key] = Gate(clock)
    return gate
