"""Rescheduling many bookings: bounded concurrency, credit accounting, one outcome per booking.

Invariants:

- Each distinct id gets exactly one outcome and at most one POST; duplicates are collapsed.
- With checks on, the balance is read once. Credits are reserved (under no ``await``, so no two
  bookings can both take the last credits) before a booking's POST and given back only when its
  POST certainly spent nothing (a 4xx answer, or a request that never left). When the outcome is
  unknown, or the server failed (5xx), the credits stay reserved: better to refuse a later booking
  than to overspend.
- Requests: one balance read (by the first booking that needs it), then per booking at most one
  MadeBookingDetails and one POST (a
  booking whose last outcome is unknown is reconciled first: one more details read and a listing).
- Each booking goes through the client's :class:`~aw_async._once.RescheduleGuard`: the journal,
  single-flight and reconciliation hold in a batch exactly as for a single call, so a batch re-run
  after a crash reschedules nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Protocol

import attrs

from ._aio import gather_or_cancel
from ._once import Attempt, RescheduleGuard
from ._prerequisites import check_session_passed, require_id
from ._redact import stand_in
from .errors import (
    AdultWorkError,
    ApiError,
    InsufficientCreditsError,
    NotStartedError,
    OutcomeUnknownError,
    ServerError,
    TransportError,
    UnexpectedError,
)
from .models import MadeBooking

__all__ = ["RescheduleOutcome", "reschedule_batch"]

log = logging.getLogger("aw_async")


@attrs.frozen
class RescheduleOutcome:
    """What happened to one booking of a batch.

    Attributes:
        booking_id: the booking that was to be rescheduled.
        booking: the new booking, when the reschedule went through.
        error: why it did not; an :class:`~aw_async.errors.OutcomeUnknownError` means it may have.
    """

    booking_id: int
    booking: MadeBooking | None = None
    error: AdultWorkError | None = None

    @property
    def ok(self) -> bool:
        """True when the booking was rescheduled."""
        return self.error is None


class _Rescheduler(Protocol):
    server_timezone: tzinfo

    async def made_booking_details(self, booking_id: int, *, as_user: int | None = None) -> MadeBooking: ...

    async def send_reschedule(self, booking_id: int) -> MadeBooking: ...


class _CreditLedger:
    """The balance left for the rest of the batch."""

    def __init__(self, balance: Decimal) -> None:
        self.available = balance

    def reserve(self, booking: MadeBooking) -> None:
        if booking.credits > self.available:
            raise InsufficientCreditsError(booking.booking_id, booking.credits, self.available)
        self.available -= booking.credits

    def settle(self, booking: MadeBooking, error: AdultWorkError) -> None:
        """Give the credits back if the failed POST certainly spent none."""
        spent_nothing = (isinstance(error, ApiError) and not isinstance(error, ServerError)) or (
            isinstance(error, TransportError) and not isinstance(error, OutcomeUnknownError)
        )
        if spent_nothing:
            self.available += booking.credits


_STOPPED = "the batch was stopped before this booking began; nothing was sent"


def as_outcome_error(exc: Exception, *, posting: bool) -> AdultWorkError:
    """``exc`` as a booking's outcome: itself if it is ours, else an error that says whether the
    POST may have been sent (the calls below map everything; this is the batch's own net)."""
    if isinstance(exc, AdultWorkError):
        return exc
    what = f"{type(exc).__name__}: {exc}"
    error: AdultWorkError = (
        OutcomeUnknownError(f"the reschedule may have been sent, then this came up: {what}")
        if posting
        else UnexpectedError(f"the booking could not be rescheduled: {what}")
    )
    error.__cause__ = stand_in(exc, ())  # never the original: it may carry what a message must not
    return error


async def reschedule_batch(
    service: _Rescheduler,
    booking_ids: Iterable[int],
    *,
    concurrency: int,
    check_preconditions: bool,
    on_progress: Callable[[RescheduleOutcome], None] | None,
    balance: Callable[[], Awaitable[Decimal]],
    guard: RescheduleGuard,
    force: bool = False,
    stop: asyncio.Event | None = None,
) -> list[RescheduleOutcome]:
    """See :meth:`PhoneChatService.reschedule_made_bookings`."""
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    ids = list(dict.fromkeys(require_id(booking_id) for booking_id in booking_ids))
    outcomes: list[RescheduleOutcome | None] = [None] * len(ids)
    if not ids:
        return []

    def report(index: int, outcome: RescheduleOutcome) -> None:
        outcomes[index] = outcome
        if on_progress is not None:
            try:
                on_progress(outcome)
            except Exception:
                log.exception("on_progress raised for booking %d; the batch goes on", outcome.booking_id)

    # The balance is read once, by the first booking that gets as far as needing it (a booking the
    # journal already knows was rescheduled costs no request at all). If it cannot be read, every
    # booking that needs it fails with that same error.
    ledger_read: asyncio.Future[_CreditLedger] | None = None

    async def the_ledger() -> _CreditLedger:
        nonlocal ledger_read
        if ledger_read is None:
            ledger_read = asyncio.ensure_future(_read_ledger(balance))
        try:
            return await asyncio.shield(ledger_read)
        except AdultWorkError as exc:  # one error for every booking: do not grow its traceback each time
            raise exc.with_traceback(None) from exc.__cause__

    async def attempt(booking_id: int, progress: Attempt) -> MadeBooking:
        booking: MadeBooking | None = None
        ledger: _CreditLedger | None = None
        if check_preconditions:
            ledger = await the_ledger()
            booking = await service.made_booking_details(booking_id)
            check_session_passed(booking, datetime.now(UTC), service.server_timezone)
            ledger.reserve(booking)
        progress.posting = True
        try:
            return await service.send_reschedule(booking_id)
        except AdultWorkError as exc:
            if ledger is not None and booking is not None:
                ledger.settle(booking, exc)
            raise

    async def reschedule(index: int, booking_id: int) -> RescheduleOutcome:
        progress = Attempt()

        async def tracked(attempt_progress: Attempt) -> MadeBooking:
            nonlocal progress
            progress = attempt_progress  # the guard's: it says whether the POST may have left
            return await attempt(booking_id, attempt_progress)

        try:
            # Not detached: a batch's cancellation is its flights' (it reports the POSTs in flight as
            # unknown), and a task a booking would cost it more than the rest of the journal.
            new_booking = await guard.run(booking_id, tracked, force=force, detached=False)
            return RescheduleOutcome(booking_id, booking=new_booking)
        except Exception as exc:  # whatever it is, it is this booking's outcome, not the batch's end
            return RescheduleOutcome(booking_id, error=as_outcome_error(exc, posting=progress.posting))
        except asyncio.CancelledError:
            if progress.posting:  # the POST was on its way: nobody can say whether it arrived
                error: AdultWorkError = OutcomeUnknownError(
                    f"the batch was cancelled while RescheduleMadeBooking for booking {booking_id} "
                    "was in flight; it is recorded as unknown, and the next attempt reconciles first"
                )
            else:
                error = NotStartedError(f"the batch was cancelled before booking {booking_id}'s POST")
            report(index, RescheduleOutcome(booking_id, error=error))
            raise

    pending = iter(enumerate(ids))

    async def worker() -> None:
        for index, booking_id in pending:  # shared iterator: each id is taken by one worker
            if stop is not None and stop.is_set():
                report(index, RescheduleOutcome(booking_id, error=NotStartedError(_STOPPED)))
                continue
            report(index, await reschedule(index, booking_id))

    try:
        await gather_or_cancel(*(worker() for _ in range(min(concurrency, len(ids)))))
    finally:
        if ledger_read is not None and not ledger_read.done():
            ledger_read.cancel()
    return [o for o in outcomes if o is not None]


async def _read_ledger(balance: Callable[[], Awaitable[Decimal]]) -> _CreditLedger:
    return _CreditLedger(await balance())
