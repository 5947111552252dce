"""Recognising a reschedule afterwards, as a pure function of a booking and a listing.

The server keeps no record that a booking was rescheduled, but the new booking it creates has the
original's properties except ``SessionDate``, and its own id and ``CreateDate`` (docs/api.md, "What
the server does not tell a client"). So a reschedule that happened shows in MadeBookings as a booking
created at or after the call with the original's ``Candidate.UserID``, ``Duration``, ``Credits``,
``Method``, ``PhoneNumber``, ``SkypeName`` and ``Comments``. Several such bookings make the answer
ambiguous: the caller must say so, not guess.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

from .models import MadeBooking

__all__ = ["CLOCK_SKEW", "created_since", "is_reschedule_of", "reschedules_of"]

#: How far the server's clock may be behind ours: a booking created this long before the call
#: still counts (a reschedule cannot be created before its call, but clocks disagree).
CLOCK_SKEW = timedelta(minutes=2)


def _instant(value: datetime, zone: tzinfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def created_since(booking: MadeBooking, since: datetime, zone: tzinfo) -> bool:
    """Whether ``booking`` was created at or after ``since`` (aware), allowing for clock skew. A
    naive ``CreateDate`` is server-local."""
    created = booking.create_date
    return created is not None and _instant(created, zone) >= since - CLOCK_SKEW


def is_reschedule_of(candidate: MadeBooking, original: MadeBooking) -> bool:
    """Whether ``candidate`` has every property a reschedule of ``original`` keeps."""
    if candidate.booking_id == original.booking_id:
        return False
    who = candidate.candidate.user_id if candidate.candidate else None
    whom = original.candidate.user_id if original.candidate else None
    return (
        who == whom
        and candidate.duration == original.duration
        and candidate.credits == original.credits
        and candidate.method == original.method
        and candidate.phone_number == original.phone_number
        and candidate.skype_name == original.skype_name
        and candidate.comments == original.comments
    )


def reschedules_of(
    original: MadeBooking,
    listing: Iterable[MadeBooking],
    *,
    since: datetime,
    zone: tzinfo,
    exclude: frozenset[int] = frozenset(),
) -> list[MadeBooking]:
    """The bookings of ``listing`` that may be the reschedule of ``original`` made at ``since``:
    created since then, with every kept property equal. ``exclude`` names bookings known to be
    something else (the recorded reschedule of another booking)."""
    return [
        booking
        for booking in listing
        if booking.booking_id not in exclude
        and created_since(booking, since, zone)
        and is_reschedule_of(booking, original)
    ]
