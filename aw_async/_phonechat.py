"""The PhoneChat service: ``aw.phonechat``. Rescheduling lives here; the rest of a booking's life is
in :mod:`._lifecycle`.

RescheduleMadeBooking creates a new booking and spends credits, and the server keeps no record of it
(docs/api.md, "What the server does not tell a client"). So every reschedule, single or in a batch,
goes through :class:`~aw_async._once.RescheduleGuard`: the journal, single-flight and reconciliation
make it happen once per booking, however many callers, processes, crashes and re-runs there are.
With ``check_preconditions`` on, the booking and the balance are read first and a failed
prerequisite raises :class:`~aw_async.errors.PreconditionError` with no POST sent; the POST itself is
never sent twice (:class:`~aw_async.errors.OutcomeUnknownError` instead).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta, tzinfo

from ._aio import gather_or_cancel
from ._api import Api
from ._batch import RescheduleOutcome, reschedule_batch
from ._credit_history import CreditHistoryService
from ._endpoints import RESCHEDULE_MADE_BOOKING
from ._lifecycle import BookingLifecycle
from ._once import Attempt, RescheduleGuard
from ._prerequisites import check_credits, check_session_passed, instant, require_id
from ._reconcile import CLOCK_SKEW, created_since, reschedules_of
from ._requests import RescheduleMadeBookingRequest
from .errors import InvalidRequestError, OutcomeUnknownError
from .journal import AttemptState, Journal
from .models import BookingStatus, MadeBooking

__all__ = ["PhoneChatService"]

#: The statuses ``passed_bookings`` looks at unless told otherwise.
PASSED_STATUSES = (BookingStatus.PENDING, BookingStatus.ACCEPTED, BookingStatus.CONFIRMED)


class PhoneChatService(BookingLifecycle):
    """``aw.phonechat``: PhoneChat operations."""

    def __init__(
        self,
        api: Api,
        credit_history: CreditHistoryService,
        server_timezone: tzinfo,
        *,
        journal: Journal,
        lease: timedelta,
    ) -> None:
        super().__init__(api, server_timezone)
        self._credit_history = credit_history
        self.journal = journal
        self._guard = RescheduleGuard(journal, lease=lease, reconcile=self._reconcile_attempt)

    async def reschedule_made_booking(
        self, booking_id: int, *, check_preconditions: bool = True, force: bool = False
    ) -> MadeBooking:
        """Reschedule a booking whose session has passed; the answer is the **new** booking, whose
        session is 5 to 10 minutes from now. Once per booking, whatever the number of callers.

        Args:
            check_preconditions: first fetch the booking and the balance (concurrently) and refuse
                without sending the POST when a prerequisite fails. Off, the POST is sent alone.
            force: reschedule it even though the journal says it was rescheduled already.

        Raises:
            AlreadyRescheduledError: the journal says it was rescheduled (``.new_booking_id``), or a
                reconciliation of an unknown outcome found that it was; nothing was sent.
            SessionNotPassedError, InsufficientCreditsError: a prerequisite failed; nothing was sent.
            OutcomeUnknownError: the POST may have reached the server and no answer came; it was not
                sent again, and the next call reconciles before sending. Also when a reconciliation
                finds several candidates (``.candidates``).
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        require_id(booking_id)

        async def attempt(progress: Attempt) -> MadeBooking:
            if check_preconditions:
                booking, balance = await gather_or_cancel(
                    self.made_booking_details(booking_id),
                    self._credit_history.get_current_credit_balance(),
                )
                check_session_passed(booking, datetime.now(UTC), self.server_timezone)
                check_credits(booking, balance)
            progress.posting = True
            return await self.send_reschedule(booking_id)

        return await self._guard.run(booking_id, attempt, force=force)

    async def send_reschedule(self, booking_id: int) -> MadeBooking:
        """The RescheduleMadeBooking POST alone: sent once, with no prerequisite checked and no
        journal consulted. Prefer :meth:`reschedule_made_booking`."""
        request = RescheduleMadeBookingRequest(booking_id=booking_id)
        return await self._api.call(RESCHEDULE_MADE_BOOKING, request)

    async def reschedule_made_bookings(
        self,
        booking_ids: Iterable[int],
        *,
        concurrency: int = 8,
        check_preconditions: bool = True,
        on_progress: Callable[[RescheduleOutcome], None] | None = None,
        force: bool = False,
        stop: asyncio.Event | None = None,
    ) -> list[RescheduleOutcome]:
        """Reschedule many bookings; one outcome per distinct id, in input order.

        Each booking follows the rules of :meth:`reschedule_made_booking` (the journal,
        single-flight, reconciliation of unknown outcomes; ``force``). At most ``concurrency``
        bookings are in flight. A duplicate id is rescheduled once. With checks on, the balance is
        fetched once and credits are reserved locally as bookings go through, so a booking the
        remaining balance cannot cover fails with :class:`~aw_async.errors.InsufficientCreditsError`
        and sends no POST. One failure never stops the others; ``on_progress`` is called with each
        outcome as it completes (an exception it raises is logged, not propagated). Cancelling the
        call cancels the work in flight; a POST in flight at that moment is reported to
        ``on_progress`` as an :class:`~aw_async.errors.OutcomeUnknownError` and recorded as unknown.
        Setting ``stop`` (an :class:`asyncio.Event`) stops it gently: no booking starts after it,
        the ones under way finish, and each one never started gets a
        :class:`~aw_async.errors.NotStartedError` outcome.
        """
        return await reschedule_batch(
            self,
            booking_ids,
            concurrency=concurrency,
            check_preconditions=check_preconditions,
            on_progress=on_progress,
            balance=self._credit_history.get_current_credit_balance,
            guard=self._guard,
            force=force,
            stop=stop,
        )

    async def reconcile(self, booking_id: int, *, since: datetime | None = None) -> MadeBooking | None:
        """Learn from MadeBookings whether a reschedule of ``booking_id`` happened: the new booking if
        it did, None if it did not (docs/api.md, "What the server does not tell a client"). The
        journal is updated with what was found.

        Args:
            since: when the reschedule was attempted (aware, or naive in server time); by default the
                time the journal recorded for the last attempt.

        Raises:
            InvalidRequestError: no ``since``, and no attempt recorded to take it from.
            OutcomeUnknownError: several bookings could be the reschedule (``.candidates``).
        """
        require_id(booking_id)
        if since is None:
            entry = await self.journal.get(booking_id)
            if entry is None:
                raise InvalidRequestError(
                    "since", f"the journal has no attempt of booking {booking_id}: say since when to look"
                )
            since = entry.attempted_at
        return await self._reconcile_attempt(booking_id, instant(since, self.server_timezone))

    async def _reconcile_attempt(self, booking_id: int, since: datetime) -> MadeBooking | None:
        original = await self.made_booking_details(booking_id)
        first_day = (since - CLOCK_SKEW).astimezone(self.server_timezone).date()
        listing: list[MadeBooking] = []
        async for booking in self.made_bookings(start_date=first_day, order_by="date-desc"):
            if not created_since(booking, since, self.server_timezone):
                break  # newest first: everything after this is older still
            listing.append(booking)
        others = frozenset(
            entry.new_booking_id
            for entry in await self.journal.entries()
            if entry.new_booking_id is not None and entry.booking_id != booking_id
        )
        found = reschedules_of(original, listing, since=since, zone=self.server_timezone, exclude=others)
        if len(found) > 1:
            ids = tuple(booking.booking_id for booking in found)
            raise OutcomeUnknownError(
                f"booking {booking_id} may have been rescheduled into any of bookings "
                f"{', '.join(map(str, ids))}: check them before trying again",
                candidates=ids,
            )
        entry = await self.journal.get(booking_id)
        if found:
            new_id = found[0].booking_id
            await self.journal.settle(booking_id, AttemptState.RESCHEDULED, new_booking_id=new_id)
            return found[0]
        if entry is None or entry.state is not AttemptState.RESCHEDULED:  # never erase what is known
            await self.journal.settle(booking_id, AttemptState.REFUSED)
        return None

    def passed_bookings(
        self,
        *,
        since: datetime | timedelta,
        statuses: Iterable[BookingStatus | str] = PASSED_STATUSES,
        as_user: int | None = None,
    ) -> AsyncIterator[MadeBooking]:
        """The bookings whose session passed after ``since`` (a timedelta: that long ago) and that
        have not been rescheduled: not by the journal, and not by a matching newer booking in the
        same listing. Newest session first, read lazily.

        Raises:
            InvalidRequestError: ``since`` is neither a datetime nor a timedelta.
        """
        value: object = since  # checked at run time too: a caller may pass anything
        if isinstance(value, timedelta):
            start = datetime.now(UTC) - value
        elif isinstance(value, datetime):
            start = instant(value, self.server_timezone)
        else:
            kind = type(value).__name__
            raise InvalidRequestError("since", f"expected a datetime or a timedelta, got {kind}")
        if as_user is not None:
            require_id(as_user, "user id")
        return self._passed(start, frozenset(str(status) for status in statuses), as_user)

    async def _passed(
        self, start: datetime, wanted: frozenset[str], as_user: int | None
    ) -> AsyncIterator[MadeBooking]:
        now = datetime.now(UTC)
        zone = self.server_timezone
        later: list[MadeBooking] = []  # every booking seen so far: sessions later than the current one
        async for booking in self.made_bookings(order_by="sessiondate-desc", as_user=as_user):
            session = booking.session_date
            if session is None:
                continue
            moment = instant(session, zone)
            if moment < start:
                return  # latest session first: everything after this passed before the window
            if moment < now and str(booking.status) in wanted and not await self._rescheduled(booking, later):
                yield booking
            later.append(booking)

    async def _rescheduled(self, booking: MadeBooking, later: list[MadeBooking]) -> bool:
        entry = await self.journal.get(booking.booking_id)
        if entry is not None and entry.state is AttemptState.RESCHEDULED:
            return True
        assert booking.session_date is not None
        # A reschedule is made after the session passed: a match created since then is one.
        since = instant(booking.session_date, self.server_timezone)
        return bool(reschedules_of(booking, later, since=since, zone=self.server_timezone))
