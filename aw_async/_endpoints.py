"""The API operations aw_async calls, as declarations (docs/api.md, "The endpoints").

An endpoint is data, not a code path: the protocol layer builds every request from these fields
(its query string or JSON body from the ``request`` model's contract), the transport reads
``idempotent`` to decide what it may retry, and the sandbox dispatches on the declaration itself.
Adding an operation is a declaration here, a service method, and a sandbox handler
(docs/adding-an-operation.md).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import attrs

from ._params import (
    CancelMadeBookingRequest,
    CreateBookingRequest,
    MadeBookingDetailsQuery,
    MadeBookingsQuery,
    NoParameters,
    RescheduleMadeBookingRequest,
    UserBookingRequirementsQuery,
)
from .models import (
    MadeBooking,
    MadeBookingsPage,
    UserBookingRequirements,
)

__all__ = [
    "CANCEL_MADE_BOOKING",
    "CREATE_BOOKING",
    "ENDPOINTS",
    "GET_CURRENT_CREDIT_BALANCE",
    "GET_USER_BOOKING_REQUIREMENTS",
    "MADE_BOOKINGS",
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

    The ``request`` model's members go in the query string of a GET and in the JSON body of a
    POST (the vendor's pages).
    """

    name: str
    method: Literal["GET", "POST"]
    path: str
    scope: str
    """The OAuth scope the access token needs; a 403 names it."""
    request: type
    """The request model: what the call sends, by its contract's wire names."""
    response: type[R]
    idempotent: bool
    """Safe to send twice. An operation that creates or changes a booking is not."""
    group_path: str | None = None
    """The ``/v1/Groups/...`` variant, where a group manager acts for a member (``UserID``)."""


RESCHEDULE_MADE_BOOKING: Endpoint[MadeBooking] = Endpoint(
    name="RescheduleMadeBooking",
    method="POST",
    path="/v1/PhoneChat/RescheduleMadeBooking",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=RescheduleMadeBookingRequest,
    response=MadeBooking,
    idempotent=False,
)

MADE_BOOKING_DETAILS: Endpoint[MadeBooking] = Endpoint(
    name="MadeBookingDetails",
    method="GET",
    path="/v1/PhoneChat/MadeBookingDetails",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=MadeBookingDetailsQuery,
    response=MadeBooking,
    idempotent=True,
    group_path="/v1/Groups/PhoneChat/MadeBookingDetails",
)

MADE_BOOKINGS: Endpoint[MadeBookingsPage] = Endpoint(
    name="MadeBookings",
    method="GET",
    path="/v1/PhoneChat/MadeBookings",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=MadeBookingsQuery,
    response=MadeBookingsPage,
    idempotent=True,
    group_path="/v1/Groups/PhoneChat/MadeBookings",
)

CREATE_BOOKING: Endpoint[MadeBooking] = Endpoint(
    name="CreateBooking",
    method="POST",
    path="/v1/PhoneChat/CreateBooking",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=CreateBookingRequest,
    response=MadeBooking,  # inferred: every sibling operation answers with the booking
    idempotent=False,
)

CANCEL_MADE_BOOKING: Endpoint[MadeBooking] = Endpoint(
    name="CancelMadeBooking",
    method="POST",
    path="/v1/PhoneChat/CancelMadeBooking",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=CancelMadeBookingRequest,
    response=MadeBooking,
    idempotent=False,
)

GET_USER_BOOKING_REQUIREMENTS: Endpoint[UserBookingRequirements] = Endpoint(
    name="GetUserBookingRequirements",
    method="GET",
    path="/v1/PhoneChat/GetUserBookingRequirements",
    scope=PHONECHAT_BOOKINGS_SCOPE,
    request=UserBookingRequirementsQuery,
    response=UserBookingRequirements,
    idempotent=True,
)

GET_CURRENT_CREDIT_BALANCE: Endpoint[Decimal] = Endpoint(
    name="GetCurrentCreditBalance",
    method="GET",
    path="/v1/CreditHistory/GetCurrentCreditBalance",
    scope=CREDITS_HISTORY_SCOPE,
    request=NoParameters,
    response=Decimal,
    idempotent=True,
)

ENDPOINTS: tuple[Endpoint[Any], ...] = (
    RESCHEDULE_MADE_BOOKING,
    MADE_BOOKING_DETAILS,
    MADE_BOOKINGS,
    CREATE_BOOKING,
    CANCEL_MADE_BOOKING,
    GET_USER_BOOKING_REQUIREMENTS,
    GET_CURRENT_CREDIT_BALANCE,
)
