"""``passed_bookings``: the bookings whose session passed and that wait for a reschedule.

A booking is offered when its session passed inside the window, its status is one asked for, and
nothing says it was rescheduled already:

- the journal does not record it as rescheduled (or in flight now);
- it is not itself a reschedule the journal recorded (unless reschedules are asked for: one missed
  session, one reschedule, no chains);
- the listing holds no newer twin that explains it: a booking with its terms, created after its
  session, shaped like a reschedule (its session 5 to 10 minutes after its creation), and recorded
  as no booking's reschedule. Each such twin explains one booking at most (twins made the same
  week, rescheduled once, leave the other offered).

The listing is read newest session first, a page at a time (the journal is asked once a page), and
stops at a session earlier than the window by more than :data:`MARGIN` (a naive time in an hour
that repeats in autumn may be out of order by that much).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, tzinfo

from ..errors import InvalidRequestError
from ..journal import AttemptState, Journal, Key, Terms
from ..journal._reconciliation import looks_rescheduled
from ..models import MadeBooking
from ._prerequisites import instant

__all__ = ["MARGIN", "passed_bookings", "window_start"]

MARGIN = timedelta(hours=3)
_CHUNK = 100
_TAKEN = (AttemptState.RESCHEDULED, AttemptState.IN_FLIGHT)


def window_start(since: object, zone: tzinfo) -> datetime:
    """The instant the window starts: ``since`` ago for a timedelta, ``since`` itself for a datetime
    (naive: server-local). Checked at run time: a caller may pass anything."""
    if isinstance(since, timedelta):
        return datetime.now(UTC) - since
    if isinstance(since, datetime):
        return instant(since, zone)
    raise InvalidRequestError("since", f"expected a datetime or a timedelta, got {type(since).__name__}")


async def passed_bookings(
    listing: AsyncIterator[MadeBooking],
    *,
    journal: Journal,
    key: Callable[[int], Key],
    start: datetime,
    zone: tzinfo,
    statuses: frozenset[str],
    include_reschedules: bool,
) -> AsyncIterator[MadeBooking]:
    """The bookings of ``listing`` (newest session first) waiting for a reschedule (see above)."""
    now = datetime.now(UTC)
    explainers: list[MadeBooking] = []  # newer unrecorded bookings shaped like reschedules
    used: set[int] = set()
    chunk: list[MadeBooking] = []
    finished = False
    while not finished:
        try:
            chunk.append(await anext(listing))
        except StopAsyncIteration:
            finished = True
        if len(chunk) < _CHUNK and not finished:
            continue
        ids = [booking.booking_id for booking in chunk]
        entries = await journal.get_many(key(booking_id) for booking_id in ids)
        results = await journal.results_among(key(0).api_root, ids)
        for booking in chunk:
            session = booking.session_date
            if session is None:
                continue
            moment = instant(session, zone)
            if moment < start - MARGIN:
                return  # newest session first: everything after this passed before the window
            entry = entries.get(key(booking.booking_id))
            recorded = booking.booking_id in results
            wanted = (
                start <= moment < now
                and str(booking.status) in statuses
                and not (entry is not None and entry.effective_state in _TAKEN)
                and (include_reschedules or not recorded)
            )
            if wanted and not _explained(booking, explainers, used, zone):
                yield booking
            if not recorded and looks_rescheduled(booking):
                explainers.append(booking)
        chunk = []


def _explained(booking: MadeBooking, explainers: list[MadeBooking], used: set[int], zone: tzinfo) -> bool:
    """Whether an unused newer twin, created after ``booking``'s session, explains it (and use it)."""
    assert booking.session_date is not None
    session = instant(booking.session_date, zone)
    terms = Terms.of(booking)
    for newer in explainers:
        if newer.booking_id in used or newer.create_date is None:
            continue
        if instant(newer.create_date, zone) >= session and Terms.of(newer) == terms:
            used.add(newer.booking_id)
            return True
    return False
