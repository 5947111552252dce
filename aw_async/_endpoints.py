"""The API operations aw_async calls, as declarations (API.md, "The endpoints aw_async needs").

An endpoint is data, not a code path: the protocol layer builds every request from these fields and
the transport reads ``idempotent`` to decide what it may retry. Adding CancelMadeBooking is one more
declaration here and one service method.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import attrs

from .models import MadeBooking

__all__ = [
    "ENDPOINTS",
    "GET_CURRENT_CREDIT_BALANCE",
    "MADE_BOOKING_DETAILS",
    "RESCHEDULE_MADE_BOOKING",
    "Endpoint",
]

R = TypeVar("R")

PHONECHAT_BOOKINGS_SCOPE = "account_phonechat_bookings"
CREDITS_HISTORY_SCOPE = "account_credits_history"


@attrs.frozen
class Endpoint(Generic[R]):
    """One operation of the API.

    Parameters go in the query string for GET and in a JSON body for POST (the vendor's pages).
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    scope: str
    """The OAuth scope the access token needs; a 403 names it."""
    response: type[R]
    idempotent: bool
    """Safe to send twice. RescheduleMadeBooking is not: it creates a booking and spends credits."""
    group_path: str | None = None
    """The ``/v1/Groups/...`` variant, where a group manager acts for a member (``UserID``)."""


RESCHEDULE_MADE_BOOKING: Endpoint[MadeBooking] = Endpoint(
    name="RescheduleMadeBooking",
    method="POST",
    path="/v1/PhoneChat/RescheduleMadeBooking",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    response=MadeBooking,
    idempotent=False,
)

MADE_BOOKING_DETAILS: Endpoint[MadeBooking] = Endpoint(
    name="MadeBookingDetails",
    method="GET",
    path="/v1/PhoneChat/MadeBookingDetails",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    response=MadeBooking,
    idempotent=True,
    group_path="/v1/Groups/PhoneChat/MadeBookingDetails",
)

GET_CURRENT_CREDIT_BALANCE: Endpoint[Decimal] = Endpoint(
    name="GetCurrentCreditBalance",
    method="GET",
    path="/v1/CreditHistory/GetCurrentCreditBalance",
    scope=CREDITS_HISTORY_SCOPE,
    response=Decimal,
    idempotent=True,
)

ENDPOINTS: tuple[Endpoint[Any], ...] = (
    RESCHEDULE_MADE_BOOKING,
    MADE_BOOKING_DETAILS,
    GET_CURRENT_CREDIT_BALANCE,
)
