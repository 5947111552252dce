"""A client's bookings from listing to cancelling: details, MadeBookings, requirements, create, cancel.

Every documented rule that needs no server is checked before any request
(:class:`~aw_async.errors.InvalidRequestError`, naming the wire field), and with
``check_preconditions`` on, the prerequisites that need a read are checked before any POST.
POSTs that create or change a booking are never sent twice when their outcome is unknown (their
declarations are not idempotent).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal

from ._api import Api
from ._endpoints import (
    CANCEL_MADE_BOOKING,
    CREATE_BOOKING,
    GET_USER_BOOKING_REQUIREMENTS,
    MADE_BOOKING_DETAILS,
    MADE_BOOKINGS,
)
from ._prerequisites import (
    check_cancellable,
    check_create_booking,
    check_listing,
    check_offer,
    require_id,
    require_positive_id,
    server_local,
)
from ._requests import (
    CancelMadeBookingRequest,
    CreateBookingRequest,
    MadeBookingDetailsQuery,
    MadeBookingsQuery,
    UserBookingRequirementsQuery,
)
from .errors import InvalidRequestError
from .models import CallMethod, MadeBooking, MadeBookingsPage, UserBookingRequirements

__all__ = ["BookingLifecycle"]


class BookingLifecycle:
    """The PhoneChat operations on a client's bookings, rescheduling aside."""

    def __init__(self, api: Api, server_timezone: tzinfo) -> None:
        self._api = api
        self.server_timezone = server_timezone

    async def made_booking_details(self, booking_id: int, *, as_user: int | None = None) -> MadeBooking:
        """A booking the user made (MadeBookingDetails).

        Args:
            as_user: as a group manager, read the booking of this group member
                (``/v1/Groups/PhoneChat/MadeBookingDetails?UserID=...``).

        Raises:
            NotFoundError: no such booking. Others: see :mod:`aw_async.errors`.
        """
        query = MadeBookingDetailsQuery(booking_id=require_id(booking_id))
        if as_user is not None:
            require_id(as_user, "user id")
        return await self._api.call(MADE_BOOKING_DETAILS, query, as_user=as_user)

    async def made_bookings_page(
        self,
        page: int = 1,
        *,
        start_date: date | None = None,
        order_by: str = "date-desc",
        per_page: int = 50,
        as_user: int | None = None,
    ) -> MadeBookingsPage:
        """One page of the bookings the user made (MadeBookings).

        Args:
            page: the page number, from 1. A page past the last one has no bookings.
            start_date: only bookings created on or after this day.
            order_by: ``date-desc`` (newest first), ``date-asc``, ``nickname-asc``,
                ``nickname-desc``, ``sessiondate-asc`` or ``sessiondate-desc``.
            per_page: 1 to 100.
            as_user: as a group manager, a member's bookings (``/v1/Groups/PhoneChat/MadeBookings``).

        Raises:
            InvalidRequestError: an argument out of its documented range; nothing was sent.
        """
        check_listing(page=page, per_page=per_page, order_by=order_by, start_date=start_date)
        if as_user is not None:
            require_id(as_user, "user id")
        query = MadeBookingsQuery(
            start_date=start_date, order_by=order_by, bookings_per_page=per_page, page_number=page
        )
        return await self._api.call(MADE_BOOKINGS, query, as_user=as_user)

    def made_bookings(
        self,
        *,
        start_date: date | None = None,
        order_by: str = "date-desc",
        per_page: int = 100,
        as_user: int | None = None,
    ) -> AsyncIterator[MadeBooking]:
        """Every booking of every page, fetched lazily page by page (``async for``).

        Each booking is given once, even when the pages shift while it runs (a booking made
        meanwhile pushes the others one place on, and the next page repeats one): pages are
        read until the last one the server counts, or an empty one.

        Raises:
            InvalidRequestError: at once, before anything is sent, for an argument out of range.
        """
        check_listing(page=1, per_page=per_page, order_by=order_by, start_date=start_date)
        return self._every_booking(start_date, order_by, per_page, as_user)

    async def _every_booking(
        self, start_date: date | None, order_by: str, per_page: int, as_user: int | None
    ) -> AsyncIterator[MadeBooking]:
        seen: set[int] = set()
        number = 1
        while True:
            page = await self.made_bookings_page(
                number, start_date=start_date, order_by=order_by, per_page=per_page, as_user=as_user
            )
            for booking in page.bookings:
                if booking.booking_id not in seen:
                    seen.add(booking.booking_id)
                    yield booking
            if not page.bookings or number >= page.page_count:
                return
            number += 1

    async def get_user_booking_requirements(self, book_user_id: int) -> UserBookingRequirements:
        """What a user requires of a booking made with them: a price per minute (``phone_chat_ppm``,
        None when they have set none) and the call methods they offer (GetUserBookingRequirements).

        Raises:
            InvalidRequestError: ``book_user_id`` is not a positive integer; nothing was sent.
        """
        query = UserBookingRequirementsQuery(book_user_id=require_positive_id(book_user_id, "BookUserID"))
        return await self._api.call(GET_USER_BOOKING_REQUIREMENTS, query)

    async def create_booking(
        self,
        *,
        book_user_id: int,
        session_date: datetime,
        duration: int,
        method: CallMethod | int,
        credits: Decimal,
        accept_by: datetime,
        phone_number: str | None = None,
        skype_name: str | None = None,
        comments: str | None = None,
        check_preconditions: bool = True,
    ) -> MadeBooking:
        """Book a PhoneChat session with ``book_user_id`` (CreateBooking); the answer is the booking.

        Datetimes may be aware (converted to the server's time zone) or naive (server-local
        already); they are sent to the minute. ``phone_number`` is sent only with method 1,
        ``skype_name`` only with method 3.

        Raises:
            InvalidRequestError: a documented rule is broken (duration under 5 minutes, an unknown
                method, method 1 without a 10- or 11-digit phone number, method 3 without a Skype
                name, a date not in the future, ``accept_by`` not before ``session_date``); nothing
                was sent. ``.field`` names the wire field.
            OfferTooLowError: with checks on, ``credits`` is below the user's ``PhoneChatPPM x
                duration``; only the requirements were read.
            OutcomeUnknownError: the POST may have reached the server; it was not sent again.
        """
        zone = self.server_timezone
        check_create_booking(
            book_user_id=book_user_id,
            session_date=session_date,
            duration=duration,
            method=method,
            credits=credits,
            accept_by=accept_by,
            phone_number=phone_number,
            skype_name=skype_name,
            comments=comments,
            now=datetime.now(UTC),
            server_timezone=zone,
        )
        request = CreateBookingRequest(
            book_user_id=book_user_id,
            session_date=server_local(session_date, "SessionDate", zone),
            duration=duration,
            method=CallMethod(method),
            phone_number=phone_number.replace(" ", "") if method == 1 and phone_number else None,
            skype_name=skype_name if method == 3 else None,
            credits=credits,
            accept_by=server_local(accept_by, "AcceptBy", zone),
            comments=comments,
        )
        if check_preconditions:
            requirements = await self.get_user_booking_requirements(book_user_id)
            check_offer(book_user_id, credits, duration, requirements.phone_chat_ppm)
        return await self._api.call(CREATE_BOOKING, request)

    async def cancel_made_booking(
        self, booking_id: int, reason: str, *, check_preconditions: bool = True
    ) -> MadeBooking:
        """Cancel a booking the user made (CancelMadeBooking); the answer is the cancelled booking.

        Args:
            reason: why, required by the server.
            check_preconditions: first read the booking and refuse without the POST when it is
                cancelled or rejected already, or confirmed with its session passed.

        Raises:
            InvalidRequestError: no reason given; nothing was sent.
            BookingStatusError, SessionPassedError: a prerequisite failed; only the read was sent.
            OutcomeUnknownError: the POST may have reached the server; it was not sent again.
        """
        require_id(booking_id)
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidRequestError("Reason", "a reason is required to cancel a booking")
        if check_preconditions:
            booking = await self.made_booking_details(booking_id)
            check_cancellable(booking, datetime.now(UTC), self.server_timezone)
        request = CancelMadeBookingRequest(booking_id=booking_id, reason=reason)
        return await self._api.call(CANCEL_MADE_BOOKING, request)
