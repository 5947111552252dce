"""Recognising a reschedule afterwards: a pure function of attempts, a listing and what the journal
knows (docs/api.md, "Reconciling an unknown outcome").

The server keeps no record that a booking was rescheduled, but the new booking it creates keeps the
original's terms (:class:`~._rules.Terms`), gets its own id and ``CreateDate`` while the POST is
processed, and a ``SessionDate`` 5 to 10 minutes after that. So an attempt whose outcome is unknown is
decided by reading MadeBookings for *candidates*: bookings with the attempt's terms, created inside
its window, whose session is 5 to 10 minutes after their creation, that are no attempt's original and
no other booking's recorded reschedule.

- **Windows** (:func:`window`): from the attempt's start minus :data:`SKEW` to its start plus its
  settle window plus :data:`SKEW`, from every anchor there is: the host's wall clock at the claim,
  the server's clock as the client saw it then (its answers' ``Date``), and the server's clock now
  less the attempt's age (measured on a clock that never steps). So a host clock that was wrong at
  the claim does not hide the new booking.
- **The server's zone** is unknown: a naive ``CreateDate`` is server-local, so it names an instant
  only up to the server's offset from UTC (:func:`admissible_offsets`): any offset from -14 h to
  +14 h until the client has learned it (from an answer's ``Date`` beside a booking it just made),
  then that offset give or take an hour (a daylight-saving change since). A naive time counts as
  inside a window if any admissible reading of it is, so a time in an hour that repeats in autumn
  counts under either reading.
- **Twins** (attempts whose originals have equal terms) are weighed together, as a bipartite graph of
  attempts and candidates (an edge: the candidate is in the attempt's window). Each candidate is
  the reschedule of exactly one of them and each attempt made at most one, so the truth is a matching
  that covers every candidate. An attempt is proven rescheduled into a candidate only if every such
  matching pairs them; all attempts of a group are proven rescheduled if there are as many candidates
  as attempts and each is matched in every such matching (then, the new bookings being
  interchangeable, they are paired in time order). More candidates than attempts, or none that can
  be matched, means something else made bookings with those terms: nothing is concluded but "did not
  happen" for an attempt with an empty window.
- **Did not happen** needs proof: the listing read completely over the window, and the attempt's
  settle window passed (a POST whose answer was lost may still be processed until then), and no
  candidate in its window. Anything else is undecided: the candidates are named, and a
  ``retry_after`` says when waiting can tell more (None: only the user can).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import attrs

from ..models import MadeBooking
from ._rules import AttemptState, JournalEntry, Key, Terms

__all__ = [
    "SKEW",
    "DidNotHappen",
    "Happened",
    "InFlight",
    "Undecided",
    "Verdict",
    "Window",
    "admissible_offsets",
    "created_within",
    "looks_rescheduled",
    "reconcile",
    "window",
]

#: How far a clock (this host's, or the server's as last seen) may be from the truth.
SKEW = timedelta(minutes=5)
#: A reschedule's session is 5 to 10 minutes after its creation (docs/api.md), give or take this.
SESSION_TOLERANCE = timedelta(minutes=2)
_SESSION_AFTER = (timedelta(minutes=5) - SESSION_TOLERANCE, timedelta(minutes=10) + SESSION_TOLERANCE)
_HOUR = timedelta(hours=1)
#: Offsets (minutes east of UTC) a server's local time may have when nothing was learned.
ANY_OFFSET = (-14 * 60, 14 * 60)
#: Beyond this many attempts or candidates in one group of twins, nothing but empty windows is judged.
MAX_GROUP = 256


@attrs.frozen
class Window:
    """When an attempt's new booking can have been created (aware, UTC)."""

    start: datetime
    end: datetime


def window(entry: JournalEntry, server_now: datetime | None = None) -> Window:
    """The window of ``entry``'s attempt, from every anchor (``server_now``: the server's clock
    now, when known), with :data:`SKEW` either side."""
    anchors = [entry.started_at]
    if entry.server_started_at is not None:
        anchors.append(entry.server_started_at)
    if server_now is not None:
        anchors.append(server_now - timedelta(seconds=entry.age))
    settle = timedelta(seconds=entry.settle_seconds)
    return Window(min(anchors) - SKEW, max(anchors) + settle + SKEW)


def admissible_offsets(learned: int | None) -> tuple[int, int]:
    """The offsets (minutes east of UTC, lowest and highest) the server's local time may have."""
    if learned is None:
        return ANY_OFFSET
    return (learned - 60, learned + 60)


def created_within(booking: MadeBooking, span: Window, offsets: tuple[int, int]) -> bool:
    """Whether ``booking`` may have been created inside ``span``, under any admissible offset."""
    created = booking.create_date
    if created is None:
        return False
    if created.tzinfo is not None:
        return span.start <= created <= span.end
    as_utc = created.replace(tzinfo=UTC)
    earliest = as_utc - timedelta(minutes=offsets[1])
    latest = as_utc - timedelta(minutes=offsets[0])
    return earliest <= span.end and latest >= span.start


def looks_rescheduled(booking: MadeBooking) -> bool:
    """Whether ``booking``'s session is 5 to 10 minutes after its creation, as a reschedule's is (a
    naive pair may straddle a daylight-saving change: an hour either way is allowed)."""
    created, session = booking.create_date, booking.session_date
    if created is None or session is None:
        return False
    if (created.tzinfo is None) != (session.tzinfo is None):
        created, session = created.replace(tzinfo=None), session.replace(tzinfo=None)
    gap = session - created
    low, high = _SESSION_AFTER
    shifts = (timedelta(0),) if created.tzinfo is not None else (timedelta(0), _HOUR, -_HOUR)
    return any(low <= gap + shift <= high for shift in shifts)


@attrs.frozen
class Happened:
    """The attempt rescheduled its booking into ``booking``."""

    booking: MadeBooking


@attrs.frozen
class DidNotHappen:
    """The attempt's POST was never processed: proven by a complete listing after its settle window."""


@attrs.frozen
class Undecided:
    """What happened cannot be told: the bookings that may be its reschedule, and when waiting may
    tell more (None: only the user can, with ``resolve``)."""

    candidates: tuple[int, ...]
    retry_after: float | None


@attrs.frozen
class InFlight:
    """The attempt is in flight with a live owner: its owner will record the outcome."""

    since: datetime


Verdict = Happened | DidNotHappen | Undecided | InFlight


@attrs.frozen
class _Attempt:
    key: Key
    span: Window
    settled: bool
    live: bool
    retry_after: float
    since: datetime


def reconcile(
    attempts: Sequence[JournalEntry],
    listing: Iterable[MadeBooking],
    *,
    complete: bool,
    offsets: tuple[int, int],
    recorded: frozenset[int] = frozenset(),
    server_now: datetime | None = None,
) -> dict[Key, Verdict]:
    """What happened to each of ``attempts`` (their effective state unknown, or in flight), given the
    bookings a MadeBookings read found since the earliest window began.

    Args:
        attempts: the attempts to judge, with every twin whose window may share a candidate with
            them (unknown or in flight, of the same API root); each must have its terms.
        listing: the bookings read (any order; each booking once).
        complete: whether the read went to the end of the listing over every window.
        offsets: the admissible offsets of the server's local time (:func:`admissible_offsets`).
        recorded: booking ids the journal records as a reschedule of some booking.
        server_now: the server's clock when the attempts' ages were read (another anchor).
    """
    originals = frozenset(a.booking_id for a in attempts)
    by_terms: dict[Terms, list[JournalEntry]] = {}
    for entry in attempts:
        if entry.terms is None:
            raise ValueError(f"{entry.key} has no terms: learn them before reconciling")
        by_terms.setdefault(entry.terms, []).append(entry)
    candidates: dict[Terms, list[MadeBooking]] = {terms: [] for terms in by_terms}
    spans = {entry.key: window(entry, server_now) for entry in attempts}
    for booking in listing:
        if (
            booking.booking_id in originals
            or booking.booking_id in recorded
            or not looks_rescheduled(booking)
        ):
            continue
        same_terms = candidates.get(Terms.of(booking))
        if same_terms is not None:
            same_terms.append(booking)
    verdicts: dict[Key, Verdict] = {}
    for terms, entries in by_terms.items():
        group = [
            _Attempt(
                e.key,
                spans[e.key],
                e.settled,
                e.effective_state is AttemptState.IN_FLIGHT,
                e.retry_after,
                e.started_at,
            )
            for e in entries
        ]
        found = [c for c in candidates[terms] if any(created_within(c, a.span, offsets) for a in group)]
        verdicts.update(_judge(group, found, complete=complete, offsets=offsets))
    return verdicts


def _judge(
    attempts: list[_Attempt], candidates: list[MadeBooking], *, complete: bool, offsets: tuple[int, int]
) -> dict[Key, Verdict]:
    """The verdicts for one group of twins (see the module's docstring)."""
    edges = [[i for i, c in enumerate(candidates) if created_within(c, a.span, offsets)] for a in attempts]
    pending = [a for a in attempts if a.live or not a.settled]
    wait = max((a.retry_after if not a.live else 5.0 for a in pending), default=None)

    def undecided(index: int) -> Undecided:
        return Undecided(tuple(candidates[i].booking_id for i in edges[index]), wait)

    matching = None
    if len(candidates) <= len(attempts) <= MAX_GROUP:
        matching = _Matching(edges, len(candidates)).covering()
    verdicts: dict[Key, Verdict] = {}
    if matching is None:  # something else made bookings with these terms: judge empty windows only
        for index, attempt in enumerate(attempts):
            verdicts[attempt.key] = _empty_window(attempt, complete) if not edges[index] else undecided(index)
        return verdicts
    always = [not matching.can_be_unmatched(i) for i in range(len(attempts))]
    # Every attempt made exactly one of these bookings: which is whose does not matter (twins' new
    # bookings differ only in their times), unless an owner still at work will say itself.
    interchangeable = len(candidates) == len(attempts) and all(always) and not any(a.live for a in attempts)
    pairs = _in_time_order(attempts, candidates, edges) if interchangeable else None
    for index, attempt in enumerate(attempts):
        if attempt.live:
            verdicts[attempt.key] = InFlight(attempt.since)
        elif not edges[index]:
            verdicts[attempt.key] = _empty_window(attempt, complete)
        elif always[index] and matching.forced(index):
            verdicts[attempt.key] = Happened(candidates[matching.partner[index]])
        elif pairs is not None:
            verdicts[attempt.key] = Happened(candidates[pairs[index]])
        else:
            verdicts[attempt.key] = undecided(index)
    return verdicts


def _empty_window(attempt: _Attempt, complete: bool) -> Verdict:
    if attempt.live:
        return InFlight(attempt.since)
    if attempt.settled and complete:
        return DidNotHappen()
    return Undecided((), attempt.retry_after if not attempt.settled else None)


def _in_time_order(
    attempts: list[_Attempt], candidates: list[MadeBooking], edges: list[list[int]]
) -> list[int] | None:
    """Interchangeable twins, each proven rescheduled: pair them in time order if that is a matching."""
    by_start = sorted(range(len(attempts)), key=lambda i: (attempts[i].span.start, attempts[i].key))
    by_creation = sorted(
        range(len(candidates)),
        key=lambda i: (candidates[i].create_date or datetime.min, candidates[i].booking_id),
    )
    pairs = [0] * len(attempts)
    for attempt, candidate in zip(by_start, by_creation, strict=True):
        if candidate not in edges[attempt]:
            return None  # time order is not a matching here: leave them undecided
        pairs[attempt] = candidate
    return pairs


class _Matching:
    """A matching of attempts to candidates that covers every candidate, and what can change in it
    (Kuhn's augmenting paths: the groups are small)."""

    def __init__(self, edges: list[list[int]], candidates: int) -> None:
        self.edges = edges
        self.partner: list[int] = [-1] * len(edges)  # attempt -> candidate
        self.owner: list[int] = [-1] * candidates  # candidate -> attempt

    def covering(self) -> _Matching | None:
        """Self, once every candidate is matched; None if no matching covers them all."""
        for candidate in range(len(self.owner)):
            if not self._augment(candidate, set(), banned=-1, banned_edge=None):
                return None
        return self

    def _augment(
        self, candidate: int, seen: set[int], *, banned: int, banned_edge: tuple[int, int] | None
    ) -> bool:
        """Find ``candidate`` an attempt (rematching others along the way); True if found."""
        for attempt in range(len(self.edges)):
            if attempt == banned or attempt in seen or candidate not in self.edges[attempt]:
                continue
            if banned_edge == (attempt, candidate):
                continue
            seen.add(attempt)
            previous = self.partner[attempt]
            if previous == -1 or self._augment(previous, seen, banned=banned, banned_edge=banned_edge):
                self.partner[attempt] = candidate
                self.owner[candidate] = attempt
                return True
        return False

    def _trial(self) -> _Matching:
        trial = _Matching(self.edges, len(self.owner))
        trial.partner, trial.owner = list(self.partner), list(self.owner)
        return trial

    def can_be_unmatched(self, attempt: int) -> bool:
        """Whether some covering matching leaves ``attempt`` unmatched."""
        candidate = self.partner[attempt]
        if candidate == -1:
            return True
        trial = self._trial()
        trial.partner[attempt], trial.owner[candidate] = -1, -1
        return trial._augment(candidate, set(), banned=attempt, banned_edge=None)

    def forced(self, attempt: int) -> bool:
        """Whether every covering matching pairs ``attempt`` with its partner here (it is matched
        in every one: the caller checked)."""
        candidate = self.partner[attempt]
        trial = self._trial()
        trial.partner[attempt], trial.owner[candidate] = -1, -1
        # Another covering matching without this pair: give the candidate to someone else, letting
        # the attempt take another candidate along the way.
        return not trial._augment(candidate, set(), banned=-1, banned_edge=(attempt, candidate))
