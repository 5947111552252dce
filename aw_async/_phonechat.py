"""The PhoneChat service: booking details, and rescheduling with the documented prerequisites.

RescheduleMadeBooking creates a new booking and spends credits: it is not idempotent
(API.md, "RescheduleMadeBooking semantics"). So:

- with ``check_preconditions`` on, the booking and the balance are fetched first and a failed
  prerequisite raises :class:`~aw_async.errors.PreconditionError` with no POST sent;
- the POST is sent exactly once: the transport never sends it again once it may have reached the
  server, and reports :class:`~aw_async.errors.OutcomeUnknownError` instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, tzinfo

from ._aio import gather_or_cancel
from ._api import Api
from ._batch import RescheduleOutcome, reschedule_batch
from ._credit_history import CreditHistoryService
from ._endpoints import MADE_BOOKING_DETAILS, RESCHEDULE_MADE_BOOKING
from ._prerequisites import check_credits, check_session_passed, require_id
from .models import MadeBooking

__all__ = ["PhoneChatService"]


class PhoneChatService:
    """``aw.phonechat``: PhoneChat operations."""

    def __init__(self, api: Api, credit_history: CreditHistoryService, server_timezone: tzinfo) -> None:
        self._api = api
        self._credit_history = credit_history
        self.server_timezone = server_timezone

    async def made_booking_details(self, booking_id: int, *, as_user: int | None = None) -> MadeBooking:
        """A booking the user made (MadeBookingDetails).

        Args:
            as_user: as a group manager, read the booking of this group member
                (``/v1/Groups/PhoneChat/MadeBookingDetails?UserID=...``).

        Raises:
            NotFoundError: no such booking. Others: see :mod:`aw_async.errors`.
        """
        params = {"BookingID": require_id(booking_id)}
        if as_user is not None:
            require_id(as_user, "user id")
        return await self._api.call(MADE_BOOKING_DETAILS, params, as_user=as_user)

    async def reschedule_made_booking(
        self, booking_id: int, *, check_preconditions: bool = True
    ) -> MadeBooking:
        """Reschedule a booking whose session has passed; the answer is the **new** booking, whose
        session is 5 to 10 minutes from now.

        Args:
            check_preconditions: first fetch the booking and the balance (concurrently) and refuse
                without sending the POST when a prerequisite fails. Off, the POST is sent alone.

        Raises:
            SessionNotPassedError, InsufficientCreditsError: a prerequisite failed; nothing was sent.
            OutcomeUnknownError: the POST may have reached the server and no answer came; it was not
                sent again. Check the booking before trying once more.
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        require_id(booking_id)
        if check_preconditions:
            booking, balance = await gather_or_cancel(
                self.made_booking_details(booking_id),
                self._credit_history.get_current_credit_balance(),
            )
            check_session_passed(booking, datetime.now(UTC), self.server_timezone)
            check_credits(booking, balance)
        return await self.send_reschedule(booking_id)

    async def send_reschedule(self, booking_id: int) -> MadeBooking:
        """The RescheduleMadeBooking POST alone, sent once, with no prerequisite checked."""
        return await self._api.call(RESCHEDULE_MADE_BOOKING, {"BookingID": booking_id})

    async def reschedule_made_bookings(
        self,
        booking_ids: Iterable[int],
        *,
        concurrency: int = 8,
        check_preconditions: bool = True,
        on_progress: Callable[[RescheduleOutcome], None] | None = None,
    ) -> list[RescheduleOutcome]:
        """Reschedule many bookings; one outcome per distinct id, in input order.

        At most ``concurrency`` bookings are in flight. A duplicate id is rescheduled once. With
        checks on, the balance is fetched once and credits are reserved locally as bookings go
        through, so a booking the remaining balance cannot cover fails with
        :class:`~aw_async.errors.InsufficientCreditsError` and sends no POST: at most two requests
        per booking plus one. One failure never stops the others; ``on_progress`` is called with
        each outcome as it completes (an exception it raises is logged, not propagated).
        Cancelling the call cancels the work in flight; a POST in flight at that moment is reported
        to ``on_progress`` as an :class:`~aw_async.errors.OutcomeUnknownError`.
        """
        return await reschedule_batch(
            self,
            booking_ids,
            concurrency=concurrency,
            check_preconditions=check_preconditions,
            on_progress=on_progress,
            balance=self._credit_history.get_current_credit_balance,
        )
