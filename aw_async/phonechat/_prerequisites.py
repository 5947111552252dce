"""The documented rules and prerequisites of the booking operations, as pure checks.

RescheduleMadeBooking (docs/api.md, "RescheduleMadeBooking"): the SessionDate has passed, and the
credit balance covers the booking. CreateBooking and CancelMadeBooking: their documented rules,
checked before any request. Nothing here does I/O.
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from decimal import Decimal

from .._params import CreateBookingRequest
from ..errors import (
    BookingStatusError,
    InsufficientCreditsError,
    InvalidRequestError,
    OfferTooLowError,
    PreconditionError,
    SessionNotPassedError,
    SessionPassedError,
)
from ..models import BookingStatus, CallMethod, MadeBooking

__all__ = [
    "MAX_ID",
    "ORDERS",
    "check_cancellable",
    "check_credits",
    "check_listing",
    "check_offer",
    "check_session_passed",
    "create_booking_request",
    "instant",
    "require_id",
    "require_positive_id",
    "server_local",
]


#: Ids are the server's ``int``: 1 to 2**31 - 1 (docs/api.md).
MAX_ID = 2**31 - 1


def require_id(value: object, field: str = "BookingID") -> int:
    """``value`` if it is an id the server can hold: an int (not a bool, else ``TypeError``: a
    programming error) from 1 to 2**31 - 1 (else :class:`InvalidRequestError` naming ``field``),
    checked before anything is read, written or sent."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{field} is an int, got {type(value).__name__} {value!r}")
    if not 1 <= value <= MAX_ID:
        raise InvalidRequestError(field, f"must be from 1 to {MAX_ID}, got {value}")
    return value


def check_session_passed(booking: MadeBooking, now: datetime, server_timezone: tzinfo) -> None:
    """Raise unless the booking's SessionDate is before ``now`` (docs/api.md,
    "RescheduleMadeBooking").

    A naive SessionDate is the server's local time (.NET "Unspecified"): it is read in
    ``server_timezone`` (docs/api.md, "Datetimes and time zones"). In the hour a DST change repeats,
    the earlier of the two instants is taken.
    """
    session = booking.session_date
    if session is None:
        raise PreconditionError(
            f"booking {booking.booking_id} has no SessionDate, so whether it has passed is unknown"
        )
    if instant(session, server_timezone) >= now:
        raise SessionNotPassedError(booking.booking_id, session, now)


def check_credits(booking: MadeBooking, balance: Decimal) -> None:
    """Raise unless ``balance`` covers the booking's credits (the GetCurrentCreditBalance rule)."""
    if balance < booking.credits:
        raise InsufficientCreditsError(booking.booking_id, booking.credits, balance)


# --- CreateBooking: the documented rules that need no server (docs/api.md, "CreateBooking request") ---

#: MadeBookings' documented orders (docs/api.md, "MadeBookings").
ORDERS = ("date-desc", "date-asc", "nickname-asc", "nickname-desc", "sessiondate-asc", "sessiondate-desc")
MIN_DURATION = 5
_PHONE_DIGITS = (10, 11)  # "requires 10 or 11 numbers"


def server_local(value: datetime, field: str, server_timezone: tzinfo) -> datetime:
    """A request datetime as the server reads it: naive, in its time zone (docs/api.md). An aware
    value is converted; a naive one is taken as server-local already."""
    if not isinstance(value, datetime):
        raise InvalidRequestError(field, f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        return value
    return value.astimezone(server_timezone).replace(tzinfo=None)


def instant(value: datetime, server_timezone: tzinfo) -> datetime:
    """An aware instant for a datetime that is aware, or naive in server-local time."""
    return value if value.tzinfo is not None else value.replace(tzinfo=server_timezone)


def create_booking_request(
    *,
    book_user_id: int,
    session_date: datetime,
    duration: object,
    method: object,
    credits: object,
    accept_by: datetime,
    phone_number: object,
    skype_name: object,
    comments: object,
    now: datetime,
    server_timezone: tzinfo,
) -> CreateBookingRequest:
    """The CreateBooking request for these arguments, its datetimes server-local; or
    :class:`InvalidRequestError`, naming the wire field, for the first documented rule they break.
    ``phone_number`` is sent only with method 1, ``skype_name`` only with method 3."""
    require_positive_id(book_user_id, "BookUserID")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration < MIN_DURATION:
        raise InvalidRequestError("Duration", f"must be a whole number of minutes, at least {MIN_DURATION}")
    if method not in (1, 2, 3) or isinstance(method, bool):
        raise InvalidRequestError(
            "Method", f"must be 1 (you are called), 2 (you call) or 3 (Skype), got {method!r}"
        )
    if method == 1:
        digits = phone_number.replace(" ", "") if isinstance(phone_number, str) else ""
        if not (digits.isascii() and digits.isdigit() and len(digits) in _PHONE_DIGITS):
            raise InvalidRequestError("PhoneNumber", "method 1 needs a phone number of 10 or 11 digits")
    if method == 3 and not (isinstance(skype_name, str) and skype_name.strip()):
        raise InvalidRequestError("SkypeName", "method 3 (Skype) needs a Skype name")
    if not isinstance(credits, Decimal) or not credits.is_finite() or credits <= 0:
        raise InvalidRequestError("Credits", f"must be a positive Decimal, got {credits!r}")
    if comments is not None and not isinstance(comments, str):
        raise InvalidRequestError("Comments", f"must be text, got {type(comments).__name__}")
    session = instant(session_date, server_timezone)
    if session <= now:
        raise InvalidRequestError("SessionDate", f"must be in the future, got {session_date.isoformat()}")
    accept = instant(accept_by, server_timezone)
    if accept <= now:
        raise InvalidRequestError("AcceptBy", f"must be in the future, got {accept_by.isoformat()}")
    if accept >= session:
        raise InvalidRequestError("AcceptBy", "must be before SessionDate")
    return CreateBookingRequest(
        book_user_id=book_user_id,
        session_date=server_local(session_date, "SessionDate", server_timezone),
        duration=duration,
        method=CallMethod(method),
        phone_number=phone_number.replace(" ", "") if method == 1 and isinstance(phone_number, str) else None,
        skype_name=skype_name if method == 3 and isinstance(skype_name, str) else None,
        credits=credits,
        accept_by=server_local(accept_by, "AcceptBy", server_timezone),
        comments=comments,
    )


def check_offer(book_user_id: int, credits: Decimal, duration: int, ppm: Decimal | None) -> None:
    """Raise :class:`OfferTooLowError` when ``credits`` is below ``PhoneChatPPM x duration``."""
    if ppm is not None and credits < ppm * duration:
        raise OfferTooLowError(book_user_id, ppm * duration, credits)


# --- CancelMadeBooking (docs/api.md, "CancelMadeBooking prerequisites") ---------------------------

_NOT_CANCELLABLE = (BookingStatus.CANCELLED, BookingStatus.REJECTED)


def check_cancellable(booking: MadeBooking, now: datetime, server_timezone: tzinfo) -> None:
    """Raise unless the booking can be cancelled: not Cancelled or Rejected already, and, when
    Confirmed, its session not passed."""
    if booking.status in _NOT_CANCELLABLE:
        raise BookingStatusError(booking.booking_id, booking.status)
    session = booking.session_date
    if booking.status == BookingStatus.CONFIRMED and session and instant(session, server_timezone) <= now:
        raise SessionPassedError(booking.booking_id, session, now)


def require_positive_id(value: object, field: str) -> int:
    """``value`` if it is a positive int (not a bool); :class:`InvalidRequestError` naming ``field``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequestError(field, f"must be a positive integer id, got {value!r}")
    return value


def check_listing(*, page: object, per_page: object, order_by: object, start_date: object) -> None:
    """The MadeBookings query's documented ranges: page from 1, 1 to 100 per page, a known order."""
    if not isinstance(page, int) or isinstance(page, bool) or page < 1:
        raise InvalidRequestError("PageNumber", f"must be an integer from 1, got {page!r}")
    if not isinstance(per_page, int) or isinstance(per_page, bool) or not 1 <= per_page <= 100:
        raise InvalidRequestError("BookingsPerPage", f"must be an integer from 1 to 100, got {per_page!r}")
    if order_by not in ORDERS:
        raise InvalidRequestError("OrderBy", f"must be one of {', '.join(ORDERS)}, got {order_by!r}")
    if start_date is not None and (not isinstance(start_date, date) or isinstance(start_date, datetime)):
        raise InvalidRequestError("StartDate", f"must be a date, got {type(start_date).__name__}")
