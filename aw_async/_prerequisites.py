"""The documented prerequisites of RescheduleMadeBooking, as pure checks (RescheduleMadeBooking.txt,
"Prerequisites"): the SessionDate has passed, and the credit balance covers the booking."""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal

from .errors import InsufficientCreditsError, PreconditionError, SessionNotPassedError
from .models import MadeBooking

__all__ = ["check_credits", "check_session_passed", "require_id"]


def require_id(value: object, what: str = "booking id") -> int:
    """``value`` if it is an integer (and not a bool); a TypeError naming ``what`` otherwise."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"a {what} is an int, got {type(value).__name__} {value!r}")
    return value


def check_session_passed(booking: MadeBooking, now: datetime, server_timezone: tzinfo) -> None:
    """Raise unless the booking's SessionDate is before ``now`` (RescheduleMadeBooking.txt,
    "Prerequisites").

    A naive SessionDate is the server's local time (.NET "Unspecified"): it is read in
    ``server_timezone`` (API.md, "Datetimes and time zones"). In the hour a DST change repeats,
    the earlier of the two instants is taken.
    """
    session = booking.session_date
    if session is None:
        raise PreconditionError(
            f"booking {booking.booking_id} has no SessionDate, so whether it has passed is unknown"
        )
    instant = session if session.tzinfo is not None else session.replace(tzinfo=server_timezone)
    if instant >= now:
        raise SessionNotPassedError(booking.booking_id, session, now)


def check_credits(booking: MadeBooking, balance: Decimal) -> None:
    """Raise unless ``balance`` covers the booking's credits (the GetCurrentCreditBalance rule)."""
    if balance < booking.credits:
        raise InsufficientCreditsError(booking.booking_id, booking.credits, balance)
