"""Requests: what the client sends, declared like what it receives (docs/design.md, "Requests").

Each operation's endpoint names one of these models; the codec layer writes it (a POST's JSON body,
a GET's query string) by its contract, and the sandbox reads it back by the same contract. The
services build them from their keyword arguments, so no code writes wire names by hand.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import attrs

from .models import CallMethod

__all__ = [
    "CancelMadeBookingRequest",
    "CreateBookingRequest",
    "MadeBookingDetailsQuery",
    "MadeBookingsQuery",
    "NoParameters",
    "RescheduleMadeBookingRequest",
    "UserBookingRequirementsQuery",
]


@attrs.frozen(kw_only=True)
class MadeBookingDetailsQuery:
    """The query of MadeBookingDetails."""

    booking_id: int


@attrs.frozen(kw_only=True)
class MadeBookingsQuery:
    """The query of MadeBookings (docs/api.md, "MadeBookings")."""

    start_date: date | None = None
    """Only bookings created on or after this day."""
    order_by: str | None = None
    bookings_per_page: int | None = None
    page_number: int | None = None


@attrs.frozen(kw_only=True)
class UserBookingRequirementsQuery:
    """The query of GetUserBookingRequirements."""

    book_user_id: int


@attrs.frozen(kw_only=True)
class NoParameters:
    """The request of an operation that takes none (GetCurrentCreditBalance)."""


@attrs.frozen(kw_only=True)
class RescheduleMadeBookingRequest:
    """The body of RescheduleMadeBooking."""

    booking_id: int


@attrs.frozen(kw_only=True)
class CancelMadeBookingRequest:
    """The body of CancelMadeBooking; both members are required."""

    booking_id: int
    reason: str


@attrs.frozen(kw_only=True)
class CreateBookingRequest:
    """The body of CreateBooking (docs/api.md, "CreateBooking request"), in the vendor's order.

    Its datetimes are server-local and written ``YYYY-MM-DD HH:MM``: naive here, already converted.
    """

    book_user_id: int
    session_date: datetime
    duration: int
    method: CallMethod | int
    phone_number: str | None = None
    skype_name: str | None = None
    credits: Decimal
    accept_by: datetime
    comments: str | None = None
