"""``aw.phonechat``: the PhoneChat operations on a client's bookings.

Every documented rule that needs no server is checked before any request
(:class:`~aw_async.errors.InvalidRequestError`, naming the wire field), and with
``check_preconditions`` on, the prerequisites that need a read are checked before any POST. POSTs
that create or change a booking are never sent twice when their outcome is unknown (their
declarations are not idempotent). RescheduleMadeBooking creates a new booking and spends credits,
and the server keeps no record of it (docs/api.md, "What the server does not tell a client"), so
every reschedule, single or in a batch, goes through the journal's rules
(:class:`~._guard.RescheduleGuard`): once per booking, however many callers, processes, hosts,
crashes and re-runs there are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import TypeVar

from .._caller import Caller
from .._clock import SYSTEM_CLOCK, Clock
from .._credit_history import CreditHistoryService
from .._endpoints import (
    CANCEL_MADE_BOOKING,
    CREATE_BOOKING,
    GET_USER_BOOKING_REQUIREMENTS,
    MADE_BOOKING_DETAILS,
    MADE_BOOKINGS,
    RESCHEDULE_MADE_BOOKING,
)
from .._params import (
    CancelMadeBookingRequest,
    MadeBookingDetailsQuery,
    MadeBookingsQuery,
    RescheduleMadeBookingRequest,
    UserBookingRequirementsQuery,
)
from .._tasks import SingleFlight, gather_or_cancel
from ..errors import InFlightElsewhereError, InvalidRequestError
from ..journal import Journal, JournalEntry, Terms
from ..journal._reconciliation import Verdict
from ..models import BookingStatus, CallMethod, MadeBooking, MadeBookingsPage, UserBookingRequirements
from ._batch import RescheduleOutcome, Services, reschedule_batch
from ._guard import AttemptContext, RescheduleGuard
from ._listing import every_booking
from ._passed import passed_bookings, window_start
from ._prerequisites import (
    check_cancellable,
    check_credits,
    check_listing,
    check_offer,
    check_session_passed,
    create_booking_request,
    instant,
    require_id,
    require_positive_id,
)
from ._reconciler import Reconciler

__all__ = ["PASSED_STATUSES", "PhoneChatService"]

T = TypeVar("T")

#: The statuses ``passed_bookings`` looks at unless told otherwise.
PASSED_STATUSES = (BookingStatus.PENDING, BookingStatus.ACCEPTED, BookingStatus.CONFIRMED)


class PhoneChatService:
    """``aw.phonechat``: PhoneChat operations.

    Args:
        caller: the client's call pipeline (:class:`~aw_async._caller.Caller`).
        credit_history: for the balance a reschedule needs.
        server_timezone: the zone of the server's suffix-less datetimes.
        journal: where reschedule attempts are recorded.
        api_root: the client's normalised ``base_url`` (the journal's keys are per API root).
        settle: the settle window of this client's attempts, in seconds.
        wait_elsewhere: how long a reschedule waits for another process's attempt in flight.
        clock: the client's clock (the POST's deadline is read on the transport's).
    """

    def __init__(
        self,
        caller: Caller,
        credit_history: CreditHistoryService,
        server_timezone: tzinfo,
        *,
        journal: Journal,
        api_root: str,
        settle: float,
        wait_elsewhere: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._caller = caller
        self._credit_history = credit_history
        # Concurrent reschedules share one balance read: each would read the same balance anyway,
        # and the read costs more than the POST. Shared only between callers that began after the
        # same POST landed (the key counts them): a read begun before a POST spent credits must not
        # clear a caller that came after it.
        self._balance_reads: SingleFlight[int] = SingleFlight()
        self._posts_landed = 0
        self.server_timezone = server_timezone
        self.journal = journal
        #: The client's normalised ``base_url``: the journal's keys are per API root.
        self.api_root = api_root
        self._reconciler = Reconciler(
            journal,
            api_root=api_root,
            details=self.made_booking_details,
            page=self._created_since,
            server_clock=caller.server_clock,
        )
        self._guard = RescheduleGuard(
            journal,
            api_root=api_root,
            settle=settle,
            wait_elsewhere=wait_elsewhere,
            server_clock=caller.server_clock,
            reconcile=self._reconcile_one,
            clock=clock,
        )

    # --- reading ---------------------------------------------------------------------------------

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
            require_id(as_user, "UserID")
        return await self._caller.call(MADE_BOOKING_DETAILS, query, as_user=as_user)

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
            require_id(as_user, "UserID")
        query = MadeBookingsQuery(
            start_date=start_date, order_by=order_by, bookings_per_page=per_page, page_number=page
        )
        return await self._caller.call(MADE_BOOKINGS, query, as_user=as_user)

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
        meanwhile pushes the others one place on, and the next page repeats one). A server whose
        pages never end is not followed for ever (:mod:`._listing`).

        Raises:
            InvalidRequestError: at once, before anything is sent, for an argument out of range.
        """
        check_listing(page=1, per_page=per_page, order_by=order_by, start_date=start_date)
        if as_user is not None:
            require_id(as_user, "UserID")
        return every_booking(
            lambda number: self.made_bookings_page(
                number, start_date=start_date, order_by=order_by, per_page=per_page, as_user=as_user
            )
        )

    async def _created_since(self, number: int, since: date) -> MadeBookingsPage:
        return await self.made_bookings_page(number, start_date=since, order_by="date-desc", per_page=100)

    async def get_user_booking_requirements(self, book_user_id: int) -> UserBookingRequirements:
        """What a user requires of a booking made with them: a price per minute (``phone_chat_ppm``,
        None when they have set none) and the call methods they offer (GetUserBookingRequirements).

        Raises:
            InvalidRequestError: ``book_user_id`` is not a positive integer; nothing was sent.
        """
        query = UserBookingRequirementsQuery(book_user_id=require_positive_id(book_user_id, "BookUserID"))
        return await self._caller.call(GET_USER_BOOKING_REQUIREMENTS, query)

    # --- booking and cancelling ----------------------------------------------------------------

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
        request = create_booking_request(
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
            server_timezone=self.server_timezone,
        )
        if check_preconditions:
            requirements = await self.get_user_booking_requirements(book_user_id)
            check_offer(book_user_id, credits, duration, requirements.phone_chat_ppm)
        return await self._spend(self._caller.call(CREATE_BOOKING, request))

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
        return await self._spend(self._caller.call(CANCEL_MADE_BOOKING, request))

    # --- rescheduling ----------------------------------------------------------------------------

    async def reschedule_made_booking(
        self, booking_id: int, *, check_preconditions: bool = True, force: bool = False
    ) -> MadeBooking:
        """Reschedule a booking whose session has passed; the answer is the **new** booking, whose
        session is 5 to 10 minutes from now. Once per booking, whatever the number of callers.

        Args:
            check_preconditions: first fetch the booking and the balance (concurrently; calls under
                way at once share a balance read) and refuse without sending the POST when a
                prerequisite fails. Off, the POST is sent alone.
            force: reschedule it even though the journal says it was rescheduled. An unknown outcome
                is reconciled first, forced or not: forced, it is sent again once the
                reconciliation has told whether the last one happened, even if it did.

        Raises:
            InvalidRequestError: ``booking_id`` is outside 1 to 2**31 - 1; nothing was read or sent.
            AlreadyRescheduledError: the journal says it was rescheduled (``.new_booking_id``), or a
                reconciliation of an unknown outcome proved that it was; nothing was sent.
            InFlightElsewhereError: another process is rescheduling it now (``.since``); nothing sent.
            SessionNotPassedError, InsufficientCreditsError: a prerequisite failed; nothing was sent.
            OutcomeUnknownError: the POST may have reached the server and no answer came; it was not
                sent again, and calling again unforced is safe: it reconciles before sending. Also when an
                earlier attempt cannot be decided yet (``.retry_after``) or at all (``.candidates``).
            JournalError: the journal could not be read or written; nothing was sent.
            ApiError, TransportError, DecodeError: see :mod:`aw_async.errors`.
        """
        require_id(booking_id)

        async def attempt(context: AttemptContext) -> MadeBooking:
            if check_preconditions:
                booking, balance = await gather_or_cancel(
                    self.made_booking_details(booking_id),
                    self._balance_reads.run(
                        self._posts_landed, self._credit_history.get_current_credit_balance
                    ),
                )
                check_session_passed(booking, datetime.now(UTC), self.server_timezone)
                check_credits(booking, balance)
                context.terms = Terms.of(booking)
            return await self._post_reschedule(booking_id, await context.before_post())

        return await self._guard.run(booking_id, attempt, force=force)

    async def _post_reschedule(self, booking_id: int, not_after: float) -> MadeBooking:
        """The RescheduleMadeBooking POST alone, held to its attempt's deadline. Only the guard's
        attempts call it: it consults no journal."""
        request = RescheduleMadeBookingRequest(booking_id=booking_id)
        return await self._spend(self._caller.call(RESCHEDULE_MADE_BOOKING, request, not_after=not_after))

    async def _spend(self, post: Awaitable[T]) -> T:
        """A POST that may change the balance: balance reads begun before it lands are not shared
        with callers that come after it."""
        try:
            return await post
        finally:
            self._posts_landed += 1

    async def reschedule_made_bookings(
        self,
        booking_ids: Iterable[int | MadeBooking],
        *,
        concurrency: int = 8,
        check_preconditions: bool = True,
        on_progress: Callable[[RescheduleOutcome], None] | None = None,
        force: bool = False,
        stop: asyncio.Event | None = None,
        rate_limit_retries: int = 5,
    ) -> list[RescheduleOutcome]:
        """Reschedule many bookings; one outcome per distinct id, in input order.

        Each booking follows the rules of :meth:`reschedule_made_booking` (the journal,
        single-flight, reconciliation of unknown outcomes; ``force``); the unknown outcomes of the
        batch's bookings are reconciled together first, from one reading of the listing. At most
        ``concurrency`` bookings are in flight. A duplicate id is rescheduled once. A
        :class:`~aw_async.models.MadeBooking` given instead of an id (from :meth:`passed_bookings`
        or the listing) is the evidence for its session prerequisite: no details are read for it.

        With checks on, the balance is read once and credits are reserved locally as bookings go
        through, so a booking the remaining balance cannot cover fails with
        :class:`~aw_async.errors.InsufficientCreditsError` and sends no POST. A POST refused with a
        429 is tried again after its ``Retry-After``, at most ``rate_limit_retries`` times. One
        failure never stops the others, but the batch stops starting bookings when it cannot go on
        (an authentication failure a refresh could not mend, a balance it could not read): the rest
        get :class:`~aw_async.errors.NotStartedError` naming the cause (``.stopped_by``).

        ``on_progress`` is called with each outcome as it completes (an exception it raises is
        logged, not propagated). Cancelling the call cancels the work in flight; a POST in flight at
        that moment is reported to ``on_progress`` as an
        :class:`~aw_async.errors.OutcomeUnknownError` and recorded as unknown. Setting ``stop`` (an
        :class:`asyncio.Event`) stops it gently: no booking starts after it, the ones under way
        finish, and each one never started gets a :class:`~aw_async.errors.NotStartedError`.

        Raises:
            TypeError: an id that is not an int (a programming error); ValueError: ``concurrency``
                below 1. InvalidRequestError: an id outside 1 to 2**31 - 1. Nothing is sent then.
        """
        services = Services(
            guard=self._guard,
            reconciler=self._reconciler,
            details=self.made_booking_details,
            post=self._post_reschedule,
            balance=self._credit_history.get_current_credit_balance,
            zone=self.server_timezone,
        )
        return await reschedule_batch(
            services,
            booking_ids,
            concurrency=concurrency,
            check_preconditions=check_preconditions,
            on_progress=on_progress,
            force=force,
            stop=stop,
            rate_limit_retries=rate_limit_retries,
        )

    # --- what happened, and the user's word --------------------------------------------------

    async def _reconcile_one(self, entry: JournalEntry) -> Verdict | None:
        return (await self._reconciler.reconcile([entry])).get(entry.key)

    async def reconcile(self, booking_id: int, *, since: datetime | None = None) -> MadeBooking | None:
        """Learn from MadeBookings whether a reschedule of ``booking_id`` happened: the new booking if
        it did, None if it provably did not (docs/api.md, "Reconciling an unknown outcome"). What it
        proves is recorded against the attempt it reconciled, never over a newer one.

        Args:
            since: when the reschedule was attempted (aware, or naive in server time), to ask about
                an attempt the journal does not hold; by default the journal's last attempt. What is
                found for such a time is recorded only when the journal holds nothing for the booking.

        Raises:
            InvalidRequestError: no ``since``, and no attempt recorded to take it from.
            InFlightElsewhereError: an attempt is in flight now; its owner will record its outcome.
            OutcomeUnknownError: it cannot be told yet (``.retry_after``), or only the user can tell
                which of several bookings is the reschedule (``.candidates``: see :meth:`resolve`).
        """
        require_id(booking_id)
        started = None if since is None else instant(since, self.server_timezone)
        return await self._reconciler.answer(self._guard.key(booking_id), started, settle=self._guard.settle)

    async def resolve(self, booking_id: int, *, rescheduled_into: int | None) -> None:
        """Record the user's own answer for a booking whose outcome is unknown or ambiguous (after
        looking at the account): ``rescheduled_into=N`` records that it was rescheduled into booking
        N, None that it was not (so the next reschedule sends it).

        Raises:
            InFlightElsewhereError: an attempt is in flight now (its POST may be on its way).
            JournalError: the journal could not be written.
        """
        require_id(booking_id)
        if rescheduled_into is not None:
            require_id(rescheduled_into)
        key = self._guard.key(booking_id)
        if await self.journal.resolve(key, rescheduled_into=rescheduled_into) is None:
            entry = await self.journal.get(key)
            raise InFlightElsewhereError(booking_id, entry.started_at if entry else datetime.now(UTC))

    def passed_bookings(
        self,
        *,
        since: datetime | timedelta,
        statuses: Iterable[BookingStatus | str] = PASSED_STATUSES,
        as_user: int | None = None,
        include_reschedules: bool = False,
    ) -> AsyncIterator[MadeBooking]:
        """The bookings whose session passed after ``since`` (a timedelta: that long ago) and that
        have not been rescheduled: not by the journal, and not by a newer twin in the listing that no
        other booking's recorded reschedule explains. A booking that is itself the result of a
        reschedule the journal recorded is left out unless ``include_reschedules`` (one missed
        session, one reschedule: no chains). Newest session first, read lazily.

        Raises:
            InvalidRequestError: ``since`` is neither a datetime nor a timedelta.
        """
        start = window_start(since, self.server_timezone)
        if as_user is not None:
            require_id(as_user, "UserID")
        listing = every_booking(
            lambda number: self.made_bookings_page(
                number, order_by="sessiondate-desc", per_page=100, as_user=as_user
            )
        )
        return passed_bookings(
            listing,
            journal=self.journal,
            key=self._guard.key,
            start=start,
            zone=self.server_timezone,
            statuses=frozenset(str(status) for status in statuses),
            include_reschedules=include_reschedules,
        )
