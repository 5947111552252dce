"""The typed values the API sends and receives.

Every model is an attrs class: frozen, slotted, keyword-only, with snake_case attribute names. The
wire names (``BookingID``, ``Candidate``...) and XML namespaces are not known here: they are mapped
once, in :mod:`aw_async.codecs`, so a model knows nothing of JSON, XML or HTTP.

Fields are declared in the order the server's Json.NET serializer writes them (RescheduleMadeBooking
response sample), which is also the order ``JsonCodec.encode`` writes them in.

Tolerance (docs/design.md, "Models and decoding"): an enum value the server adds later stays the raw
``str``/``int``, so ``status`` is typed ``BookingStatus | str`` and ``method`` ``CallMethod | int``.
Datetimes keep the kind they came with: naive for the server's "Unspecified" values, aware for ``Z``
and offsets. Money is always :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

import attrs

__all__ = [
    "BookingStatus",
    "CallMethod",
    "ErrorBody",
    "MadeBooking",
    "MadeBookingsPage",
    "PhoneChatBookingUser",
    "PhoneChatMethod",
    "UserBookingRequirements",
]


class BookingStatus(enum.StrEnum):
    """The state of a PhoneChat booking, as the server names it."""

    PENDING = "Pending"
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    CONFIRMED = "Confirmed"
    CANCELLED = "Cancelled"


class CallMethod(enum.IntEnum):
    """How the parties of a PhoneChat booking get connected."""

    #: The client (the logged-in user) is called by the booked user.
    CALLED_BY_CANDIDATE = 1
    #: The client calls the booked user.
    CLIENT_CALLS = 2
    #: The session happens over Skype.
    SKYPE = 3


@attrs.frozen(kw_only=True)
class PhoneChatBookingUser:
    """The user a PhoneChat booking was made with (``aws:PhoneChatBookingUser``, ``Candidate``).

    ``total`` to ``disputes`` are the user's feedback counters; on the server they come from a base
    class in another CLR namespace, which matters only to the XML codec.
    """

    user_id: int
    nickname: str
    phone_number: str | None = None
    skype_name: str | None = None
    total: int
    positive: int
    neutral: int
    negative: int
    ratings: int
    disputes: int


@attrs.frozen(kw_only=True)
class MadeBooking:
    """A PhoneChat booking made by the logged-in user (``MadeBooking``).

    Returned by MadeBookingDetails and by RescheduleMadeBooking, whose answer is the *new* booking.
    """

    booking_id: int
    duration: int
    """Planned length of the session, in minutes."""
    credits: Decimal
    """Credits offered by the client, or agreed by both parties once accepted."""
    status: BookingStatus | str
    method: CallMethod | int
    phone_number: str | None = None
    skype_name: str | None = None
    create_date: datetime | None = None
    session_date: datetime | None = None
    accept_by: datetime | None = None
    accepted_date: datetime | None = None
    confirmed_date: datetime | None = None
    cancelled_date: datetime | None = None
    cancelled_reason: str | None = None
    cancelled_by: str | None = None
    rejected_reason: str | None = None
    last_updated: datetime | None = None
    comments: str | None = None
    action_client: str | None = None
    candidate: PhoneChatBookingUser | None = None


@attrs.frozen(kw_only=True)
class ErrorBody:
    """The body of an error answer: ASP.NET Web API's ``HttpError`` (docs/api.md, "Error bodies").

    ``model_state`` maps a request field (``request.BookingID``) to its validation messages. In XML
    the server joins several messages for one key with spaces, so an XML body always decodes to
    one-message lists.
    """

    message: str | None = None
    message_detail: str | None = None
    exception_message: str | None = None
    exception_type: str | None = None
    stack_trace: str | None = None
    inner: ErrorBody | None = None
    # A dict cannot be hashed; leaving it out of the hash keeps ErrorBody hashable.
    model_state: dict[str, list[str]] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class MadeBookingsPage:
    """One page of MadeBookings: the bookings the user made, newest first by default.

    A page past the last one has no bookings. A server that answers with a bare list instead of
    this envelope gives a single page (``page_number`` 1 of 1, ``bookings_per_page`` None).
    """

    page_count: int
    """The total number of pages in the result set."""
    page_number: int
    """The number of this page, from 1."""
    bookings_per_page: int | None = None
    bookings: tuple[MadeBooking, ...] = ()


@attrs.frozen(kw_only=True)
class PhoneChatMethod:
    """A way of calling that a user offers for PhoneChat bookings (``aws:PhoneChatMethod``)."""

    method: CallMethod | int
    description: str | None = None


@attrs.frozen(kw_only=True)
class UserBookingRequirements:
    """What a user requires of a PhoneChat booking made with them (GetUserBookingRequirements).

    ``phone_chat_ppm`` is the price per minute in credits, None when the user has set none: an
    offer's ``credits`` must then be at least ``phone_chat_ppm * duration``.
    """

    methods: tuple[PhoneChatMethod, ...] = ()
    phone_chat_ppm: Decimal | None = None
