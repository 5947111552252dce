"""The journal: what the client remembers about reschedules, because the server does not.

RescheduleMadeBooking creates a new booking and spends credits, and nothing on the server marks the
original as rescheduled (docs/api.md, "What the server does not tell a client"). So the client
keeps, for each booking it tried to reschedule, the attempt, its time and its outcome:

=================  ==============================================================================
state              meaning, and what the next attempt does
=================  ==============================================================================
``in_flight``      an attempt is under way (its owner process and lease are recorded): wait for it
``rescheduled``    done, into ``new_booking_id``: refuse (``AlreadyRescheduledError``) unless forced
``refused``        a prerequisite or the server said no, or a reconciliation found it never
                   happened: nothing blocks a new attempt
``unknown``        the POST may have happened: reconcile (read MadeBookings) before sending again
=================  ==============================================================================

An ``in_flight`` entry whose owner is gone (a process on this host that no longer runs, or a lease
that ran out) counts as ``unknown``: that is how a batch killed with ``kill -9`` is recognised.

Invariants:

- The attempt is recorded (and, in :class:`SqliteJournal`, committed) before the POST is sent; its
  outcome after. :meth:`Journal.claim` is atomic: of two claimants, one gets the booking.
- Concurrent calls for one booking in one process (one client, or clients sharing a journal) share
  one flight: one POST, and every caller gets its result or its error. A single call's flight runs in
  a task of its own and goes on while any caller waits; a batch's runs in the batch's own task (no
  task a booking), so cancelling the batch cancels it, and a caller waiting on it then runs it again
  and finds what was recorded (a claim given back, or an outcome unknown to reconcile).

What a journal forgets, and when (a bot or a web backend must not grow without bound): a
``refused`` entry after ``keep_refused`` (1 day), a ``rescheduled`` one after ``keep_rescheduled``
(90 days), and a :class:`MemoryJournal` also its oldest settled entries beyond ``max_entries``
(100,000). ``unknown`` and ``in_flight`` entries are never forgotten: they are the ones that keep a
booking from being rescheduled twice. A :class:`MemoryJournal` forgets everything when its process
ends; a :class:`SqliteJournal` survives crashes and is shared by processes on one machine.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import itertools
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TypeVar

import attrs

__all__ = [
    "AttemptState",
    "Claim",
    "Journal",
    "JournalEntry",
    "MemoryJournal",
    "Owner",
    "SqliteJournal",
]

T = TypeVar("T")

DEFAULT_KEEP_REFUSED = timedelta(days=1)
DEFAULT_KEEP_RESCHEDULED = timedelta(days=90)
DEFAULT_MAX_ENTRIES = 100_000


class AttemptState(enum.StrEnum):
    """Where a booking's last reschedule attempt stands."""

    IN_FLIGHT = "in_flight"
    RESCHEDULED = "rescheduled"
    REFUSED = "refused"
    UNKNOWN = "unknown"


@attrs.frozen
class Owner:
    """Who holds an attempt: a process (host and pid) and a client within it (a random token)."""

    host: str
    pid: int
    token: str
    _text: str = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_text", f"{self.host}:{self.pid}:{self.token}")  # read per claim

    @classmethod
    def here(cls) -> Owner:
        """A new owner in this process."""
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(8))

    def __str__(self) -> str:
        return self._text

    @classmethod
    def parse(cls, text: str) -> Owner:
        host, pid, token = text.rsplit(":", 2)
        return cls(host, int(pid), token)

    def is_gone(self, now: datetime, lease_until: datetime | None) -> bool:
        """True when this owner can no longer finish its attempt: its lease ran out, or it was a
        process on this host that no longer runs."""
        if lease_until is not None and now >= lease_until:
            return True
        if self.host != socket.gethostname():
            return False  # another machine: only its lease can tell
        if self.pid == os.getpid():
            return False  # this process: its flights are in memory, and it is alive
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # someone else's process, alive
            return False
        return False


@attrs.frozen
class JournalEntry:
    """What the journal knows of one booking's reschedule."""

    booking_id: int
    state: AttemptState
    attempted_at: datetime
    """When the last attempt began (aware, UTC): where a reconciliation starts reading."""
    updated_at: datetime
    new_booking_id: int | None = None
    """The booking it was rescheduled into, once known."""
    owner: str | None = None
    """While in flight: the owner (``host:pid:token``)."""
    lease_until: datetime | None = None
    """While in flight: when the owner's claim runs out."""

    def effective_state(self, now: datetime) -> AttemptState:
        """The state, with an in-flight attempt whose owner is gone read as ``unknown``."""
        if self.state is not AttemptState.IN_FLIGHT or not self.owner:
            return self.state
        gone = Owner.parse(self.owner).is_gone(now, self.lease_until)
        return AttemptState.UNKNOWN if gone else AttemptState.IN_FLIGHT


@attrs.frozen
class Claim:
    """The answer to :meth:`Journal.claim`.

    ``granted`` means the caller now holds the attempt (recorded ``in_flight``, committed) and may
    send. Otherwise ``entry`` says why not: rescheduled already, in flight elsewhere, or unknown.
    """

    granted: bool
    entry: JournalEntry | None


def decide_claim(
    entry: JournalEntry | None, *, now: datetime, force: bool, after_reconcile: bool
) -> Literal["claim", "refuse"]:
    """Whether a claim on ``entry`` is granted (the rule both journals apply atomically)."""
    if entry is None:
        return "claim"
    state = entry.effective_state(now)
    if state is AttemptState.IN_FLIGHT:
        return "refuse"  # never two attempts at once, even forced
    if state is AttemptState.REFUSED:
        return "claim"
    if state is AttemptState.RESCHEDULED:
        return "claim" if force else "refuse"
    return "claim" if force or after_reconcile else "refuse"  # UNKNOWN: reconcile first


def in_flight(booking_id: int, owner: Owner, now: datetime, lease: timedelta) -> JournalEntry:
    """A new attempt's entry: claimed by ``owner`` now, for ``lease``."""
    return JournalEntry(
        booking_id=booking_id,
        state=AttemptState.IN_FLIGHT,
        attempted_at=now,
        updated_at=now,
        owner=str(owner),
        lease_until=now + lease,
    )


@attrs.define
class _Flight:
    """One booking's attempt under way in this process."""

    task: asyncio.Task[Any] | None = None
    """A detached flight's own task; None for a flight run by the caller that started it."""
    landed: asyncio.Future[Any] | None = None
    """What waiters wait on: the task itself, or a future the runner resolves (made when the first
    waiter comes)."""
    waiters: int = 0


#: What a flight's waiters are told when its runner was cancelled: run the work themselves.
_RUN_AGAIN = object()


class Journal(abc.ABC):
    """Where a client remembers its reschedule attempts. Share one between clients (and, for a
    :class:`SqliteJournal`, between processes) to share that memory.

    Subclasses implement the storage (:meth:`get`, :meth:`claim`, :meth:`settle`, :meth:`entries`,
    :meth:`forget_old`, and optionally :meth:`settle_nowait`); this base class keeps the in-process
    flights.
    """

    def __init__(
        self,
        *,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
    ) -> None:
        self.keep_refused = keep_refused
        self.keep_rescheduled = keep_rescheduled
        self._flights: dict[int, _Flight] = {}

    async def single_flight(
        self, booking_id: int, work: Callable[[], Awaitable[T]], *, detached: bool = True
    ) -> T:
        """Run ``work`` for ``booking_id`` unless a flight for it is under way in this process; then
        wait for that one instead, and get its result or its error.

        A detached flight (the default, for a single call) runs in a task of its own: a caller that
        is cancelled only stops waiting, and the flight is cancelled when its last caller is. A
        flight that is not detached (a batch's, which pays for every booking) runs in the task of
        the caller that started it: when that caller is cancelled, so is the work (which records
        what it must: a claim given back, or an outcome unknown), and a waiter runs the work again,
        which then finds that record.
        """
        while (flight := self._flights.get(booking_id)) is not None:
            outcome = await self._wait_for(flight)
            if outcome is not _RUN_AGAIN:
                return outcome  # type: ignore[no-any-return]
        if detached:
            task = asyncio.ensure_future(work())
            own = self._flights[booking_id] = _Flight(task=task, landed=task)
            task.add_done_callback(lambda _: self._land(booking_id, own))
            return await self._wait_for(own)  # type: ignore[no-any-return]
        flight = self._flights[booking_id] = _Flight()
        try:
            result = await work()
        except asyncio.CancelledError:
            self._land(booking_id, flight, _RUN_AGAIN)
            raise
        except BaseException as exc:
            self._land(booking_id, flight, error=exc)
            raise
        self._land(booking_id, flight, result)
        return result

    @staticmethod
    async def _wait_for(flight: _Flight) -> Any:
        if flight.landed is None:
            flight.landed = asyncio.get_running_loop().create_future()
        landed = flight.landed
        flight.waiters += 1
        try:
            await asyncio.wait((landed,))  # not `await landed`: cancelling a waiter must not cancel it
        except asyncio.CancelledError:
            task = flight.task
            if task is not None and flight.waiters == 1 and not task.done():
                task.cancel()  # the last caller of a detached flight: the flight goes with it, and
                await asyncio.wait((task,))  # its bookkeeping (an outcome unknown) is done first
            raise
        finally:
            flight.waiters -= 1
        return landed.result()

    def _land(
        self, booking_id: int, flight: _Flight, result: Any = None, error: BaseException | None = None
    ) -> None:
        """The flight is over: nobody joins it any more, and its waiters are told."""
        if self._flights.get(booking_id) is flight:
            del self._flights[booking_id]
        landed = flight.landed
        if flight.task is not None:  # the task is the future its waiters wait on
            if not flight.task.cancelled():
                flight.task.exception()  # marked seen: its waiters may all have gone
            return
        if landed is None:
            return  # nobody came to wait
        if error is None:
            landed.set_result(result)
        else:
            landed.set_exception(error)
            landed.exception()  # marked seen: its waiters may all have gone

    @abc.abstractmethod
    async def get(self, booking_id: int) -> JournalEntry | None:
        """What the journal knows of ``booking_id``."""

    @abc.abstractmethod
    async def claim(
        self,
        booking_id: int,
        *,
        owner: Owner,
        lease: timedelta,
        force: bool = False,
        after_reconcile: bool = False,
    ) -> Claim:
        """Atomically take the attempt for ``booking_id`` (recorded ``in_flight``, durable before
        this returns) unless the rule of :func:`decide_claim` refuses it."""

    @abc.abstractmethod
    async def release(self, booking_id: int, owner: Owner) -> None:
        """Give up ``owner``'s claim on ``booking_id`` if it holds one that is still in flight (its
        caller went away before sending anything): recorded as refused. Anything else is left as
        it is, so a release can never erase what is known."""

    @abc.abstractmethod
    async def settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        """Record an attempt's outcome (or a reconciliation's finding)."""

    def settle_nowait(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> bool:
        """Record an outcome at once, without awaiting anything, when this journal can; False when
        it cannot, and :meth:`settle` must be awaited instead. An outcome recorded this way cannot
        be lost to a cancellation, which saves shielding an await (both built-in journals can: a
        dictionary, or a queue to the writer thread). The default cannot."""
        return False

    @abc.abstractmethod
    async def entries(self) -> list[JournalEntry]:
        """Everything the journal holds, by booking id."""

    @abc.abstractmethod
    async def forget_old(self, now: datetime | None = None) -> int:
        """Forget settled entries past their keeping time; return how many were forgotten."""

    async def aclose(self) -> None:  # noqa: B027 - a journal with nothing to close needs no override
        """Release what the journal holds (a database connection)."""

    def _expired(self, entry: JournalEntry, now: datetime) -> bool:
        if entry.state is AttemptState.REFUSED:
            return now - entry.updated_at > self.keep_refused
        if entry.state is AttemptState.RESCHEDULED:
            return now - entry.updated_at > self.keep_rescheduled
        return False  # unknown and in-flight entries are never forgotten


class MemoryJournal(Journal):
    """A journal in this process's memory: the default, one per client.

    It prevents double reschedules within the process (concurrent callers, a second click, a
    retried batch), but knows nothing of other processes or of anything before this one started:
    pass a :class:`SqliteJournal` (or ``journal=path``) for that.

    Args:
        max_entries: beyond this many entries, the oldest settled ones are forgotten first.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
    ) -> None:
        super().__init__(keep_refused=keep_refused, keep_rescheduled=keep_rescheduled)
        self.max_entries = max_entries
        self._entries: dict[int, JournalEntry] = {}  # in order of last change: oldest first
        self._settled = 0

    def __repr__(self) -> str:
        return f"MemoryJournal({len(self._entries)} entries)"

    async def get(self, booking_id: int) -> JournalEntry | None:
        return self._entries.get(booking_id)

    async def claim(
        self,
        booking_id: int,
        *,
        owner: Owner,
        lease: timedelta,
        force: bool = False,
        after_reconcile: bool = False,
    ) -> Claim:
        now = datetime.now(UTC)
        entry = self._entries.get(booking_id)
        if decide_claim(entry, now=now, force=force, after_reconcile=after_reconcile) == "refuse":
            return Claim(False, entry)
        self._put(in_flight(booking_id, owner, now, lease))
        return Claim(True, self._entries[booking_id])

    async def release(self, booking_id: int, owner: Owner) -> None:
        entry = self._entries.get(booking_id)
        if entry is not None and entry.state is AttemptState.IN_FLIGHT and entry.owner == str(owner):
            await self.settle(booking_id, AttemptState.REFUSED)

    async def settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        self._record(booking_id, state, new_booking_id)

    def settle_nowait(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> bool:
        self._record(booking_id, state, new_booking_id)
        return True

    def _record(self, booking_id: int, state: AttemptState, new_booking_id: int | None) -> None:
        now = datetime.now(UTC)
        entry = self._entries.get(booking_id)
        attempted_at = entry.attempted_at if entry is not None else now
        self._put(JournalEntry(booking_id, state, attempted_at, now, new_booking_id))
        self._settled += 1
        if self._settled % 1024 == 0:
            self._forget_old(now)

    def _put(self, entry: JournalEntry) -> None:
        self._entries.pop(entry.booking_id, None)  # re-inserted last: the dict stays oldest-first
        self._entries[entry.booking_id] = entry
        if len(self._entries) > self.max_entries:
            self._evict(len(self._entries) - self.max_entries)

    def _evict(self, count: int) -> None:
        settled = (AttemptState.REFUSED, AttemptState.RESCHEDULED)
        # Oldest first, and lazily: an insert past the bound costs the entries it walks, not all.
        oldest = list(itertools.islice((b for b, e in self._entries.items() if e.state in settled), count))
        for booking_id in oldest:
            del self._entries[booking_id]

    async def entries(self) -> list[JournalEntry]:
        return [self._entries[b] for b in sorted(self._entries)]

    async def forget_old(self, now: datetime | None = None) -> int:
        return self._forget_old(now or datetime.now(UTC))

    def _forget_old(self, now: datetime) -> int:
        # Oldest first, by last change: past the first entry too young to expire in any state,
        # every entry is younger still, so a pass costs the expired entries, not the journal.
        horizon = now - min(self.keep_refused, self.keep_rescheduled)
        old = []
        for booking_id, entry in self._entries.items():
            if entry.updated_at >= horizon:
                break
            if self._expired(entry, now):
                old.append(booking_id)
        for booking_id in old:
            del self._entries[booking_id]
        return len(old)


from ._journal_sqlite import SqliteJournal  # noqa: E402 - it builds on the classes above
