"""Rescheduling many bookings: bounded concurrency, credit accounting, one outcome per booking.

Invariants:

- Each distinct id gets exactly one outcome, in input order, and at most one POST: every booking goes
  through the client's :class:`~._guard.RescheduleGuard`, so the journal's rules hold in a batch
  exactly as for a single call, and a batch re-run after a crash reschedules nothing twice.
- With checks on, the balance is read once. Credits are reserved (under no ``await``, so no two
  bookings can both take the last credits) before a booking's POST, and given back only when
  :func:`~aw_async.journal.outcome_of` says the POST spent nothing.
- Requests: one balance read; per booking at most one MadeBookingDetails (none for a
  :class:`~aw_async.models.MadeBooking` the caller gave: its data is the evidence) and one POST.
  The unknown outcomes of the batch's bookings are reconciled together first, from one reading of
  the listing.
- A booking whose POST was refused with a 429 (recorded as refused: nothing was spent) goes back in
  the queue and is tried again, at most ``rate_limit_retries`` times; only then does it fail with
  :class:`~aw_async.errors.RateLimitError`. The wait is the account's gate's: the 429 closed it, and
  every request of the batch waits there until its ``Retry-After`` has passed.
- The batch stops starting bookings when it cannot go on: an authentication failure that a refresh
  could not mend, or a balance that could not be read. The bookings not started get a
  :class:`~aw_async.errors.NotStartedError` whose ``stopped_by`` is that error. Setting ``stop`` does
  the same on the caller's word (``stopped_by`` None).
- Cancelling the batch cancels its work; a booking whose POST was on its way is reported to
  ``on_progress`` as an :class:`~aw_async.errors.OutcomeUnknownError` (and recorded as unknown).
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

import attrs

from .._redact import stand_in
from .._tasks import gather_or_cancel
from ..errors import (
    AdultWorkError,
    AuthenticationError,
    NotStartedError,
    OutcomeUnknownError,
    RateLimitError,
    UnexpectedError,
)
from ..journal import AttemptState, JournalEntry, Key, Terms, outcome_of
from ..journal._reconciliation import Verdict
from ..models import MadeBooking
from ._guard import AttemptContext, RescheduleGuard
from ._prerequisites import check_credits, check_session_passed, require_id
from ._reconciler import Reconciler

__all__ = ["RescheduleOutcome", "Stage", "reschedule_batch"]

log = logging.getLogger("aw_async")

#: How often a booking refused with a 429 is tried again, by default.
RATE_LIMIT_RETRIES = 5


class Stage(enum.StrEnum):
    """Where a booking's reschedule stopped."""

    JOURNAL = "journal"
    """The claim: rescheduled already, in flight elsewhere, unknown, or the journal failed."""
    BALANCE = "balance"
    DETAILS = "details"
    PREREQUISITES = "prerequisites"
    POST = "post"
    """The RescheduleMadeBooking POST was handed to the transport."""
    NOT_STARTED = "not_started"


@attrs.frozen
class RescheduleOutcome:
    """What happened to one booking of a batch.

    Attributes:
        booking_id: the booking that was to be rescheduled.
        booking: the new booking, when the reschedule went through.
        error: why it did not.
        stage: where it stopped (None when it went through).
        may_have_happened: True when the POST may have been processed although no new booking came
            back (a lost answer, a 5xx; or an earlier attempt a reconciliation could not decide):
            check before trying again (the journal will: it reconciles first).
    """

    booking_id: int
    booking: MadeBooking | None = None
    error: AdultWorkError | None = None
    stage: Stage | None = None
    may_have_happened: bool = False

    @property
    def ok(self) -> bool:
        """True when the booking was rescheduled."""
        return self.error is None


class _CreditLedger:
    """The balance left for the rest of the batch."""

    def __init__(self, balance: Decimal) -> None:
        self.available = balance

    def reserve(self, booking: MadeBooking) -> None:
        """Take the booking's credits from what is left, by the single call's rule (check_credits)."""
        check_credits(booking, self.available)
        self.available -= booking.credits

    def refund_if_unspent(
        self, booking: MadeBooking, error: BaseException, *, post_may_have_left: bool
    ) -> None:
        """Give the credits back when the failed attempt certainly spent none."""
        if outcome_of(error, post_may_have_left=post_may_have_left) is AttemptState.REFUSED:
            self.available += booking.credits


@attrs.define(eq=False)
class _Item:
    index: int
    booking_id: int
    evidence: MadeBooking | None
    rate_limited: int = 0
    stage: Stage = Stage.JOURNAL


Details = Callable[[int], Awaitable[MadeBooking]]
Post = Callable[[int, float], Awaitable[MadeBooking]]


@attrs.define
class Services:
    """What a batch calls (the service's operations)."""

    guard: RescheduleGuard
    reconciler: Reconciler
    details: Details
    post: Post
    balance: Callable[[], Awaitable[Decimal]]
    zone: tzinfo


def items_of(bookings: Iterable[int | MadeBooking]) -> list[_Item]:
    """The distinct bookings, in input order; a MadeBooking given is the evidence for its id."""
    seen: dict[int, _Item] = {}
    for value in bookings:
        if isinstance(value, MadeBooking):
            booking_id, evidence = require_id(value.booking_id), value
        else:
            booking_id, evidence = require_id(value), None
        item = seen.get(booking_id)
        if item is None:
            seen[booking_id] = _Item(len(seen), booking_id, evidence)
        elif item.evidence is None:
            item.evidence = evidence
    return list(seen.values())


async def reschedule_batch(
    services: Services,
    bookings: Iterable[int | MadeBooking],
    *,
    concurrency: int,
    check_preconditions: bool,
    on_progress: Callable[[RescheduleOutcome], None] | None,
    force: bool,
    stop: asyncio.Event | None,
    rate_limit_retries: int = RATE_LIMIT_RETRIES,
) -> list[RescheduleOutcome]:
    """See :meth:`PhoneChatService.reschedule_made_bookings`."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool):
        raise TypeError(f"concurrency is an int, got {type(concurrency).__name__}")
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    items = items_of(bookings)
    if not items:
        return []
    batch = _Batch(services, items, check_preconditions, on_progress, force, stop, rate_limit_retries)
    return await batch.run(concurrency)


class _Batch:
    def __init__(
        self,
        services: Services,
        items: list[_Item],
        check: bool,
        on_progress: Callable[[RescheduleOutcome], None] | None,
        force: bool,
        stop: asyncio.Event | None,
        rate_limit_retries: int,
    ) -> None:
        self.services = services
        self.items = items
        self.check = check
        self.on_progress = on_progress
        self.force = force
        self.stop = stop
        self.rate_limit_retries = rate_limit_retries
        self.outcomes: list[RescheduleOutcome | None] = [None] * len(items)
        self.pending = deque(items)
        self.stopped_by: AdultWorkError | None = None
        self.ledger_read: asyncio.Future[_CreditLedger] | None = None
        self.verdicts: dict[tuple[Key, int], Verdict] = {}

    async def run(self, concurrency: int) -> list[RescheduleOutcome]:
        await self._reconcile_known_unknowns()
        try:
            await gather_or_cancel(*(self._worker() for _ in range(min(concurrency, len(self.items)))))
        finally:
            if self.ledger_read is not None and not self.ledger_read.done():
                self.ledger_read.cancel()
        return [outcome for outcome in self.outcomes if outcome is not None]

    def _report(self, item: _Item, outcome: RescheduleOutcome) -> None:
        self.outcomes[item.index] = outcome
        if self.on_progress is not None:
            try:
                self.on_progress(outcome)
            except Exception:
                log.exception("on_progress raised for booking %d; the batch goes on", outcome.booking_id)

    # --- before anything: the batch's unknown outcomes, reconciled together ----------------------

    async def _reconcile_known_unknowns(self) -> None:
        guard = self.services.guard
        try:
            entries = await guard.journal.get_many(guard.key(item.booking_id) for item in self.items)
        except AdultWorkError:
            return  # each booking's claim will meet the journal's failure, and report it
        unknown = [e for e in entries.values() if e.effective_state is AttemptState.UNKNOWN]
        if not unknown:
            return
        try:
            verdicts = await self.services.reconciler.reconcile(unknown)
        except AdultWorkError:
            log.warning(
                "the batch's reconciliation failed; each booking reconciles on its own", exc_info=True
            )
            return
        attempts = {entry.key: entry.attempt for entry in unknown}
        self.verdicts = {(key, attempts[key]): v for key, v in verdicts.items() if key in attempts}

    async def _reconcile(self, entry: JournalEntry) -> Verdict | None:
        verdict = self.verdicts.pop((entry.key, entry.attempt), None)
        if verdict is not None:
            return verdict
        return (await self.services.reconciler.reconcile([entry])).get(entry.key)

    # --- the workers --------------------------------------------------------------------------

    async def _worker(self) -> None:
        while self.pending:
            if self.stopped_by is not None or (self.stop is not None and self.stop.is_set()):
                self._not_started()
                return
            item = self.pending.popleft()
            outcome = await self._reschedule(item)
            if outcome is None:  # refused with a 429: behind the others (this worker takes it again)
                self.pending.append(item)
                continue
            self._report(item, outcome)
            if isinstance(outcome.error, AuthenticationError) and self.stopped_by is None:
                self.stopped_by = outcome.error  # the API call already tried a refresh: nothing mends it

    def _not_started(self) -> None:
        """Every booking not started gets its outcome now (once, whichever worker sees it first)."""
        stopped_by = self.stopped_by
        message = (
            f"the batch stopped before this booking began ({stopped_by}); nothing was sent"
            if stopped_by is not None
            else "the batch was stopped before this booking began; nothing was sent"
        )
        while self.pending:
            item = self.pending.popleft()
            error = NotStartedError(message, stopped_by=stopped_by)
            self._report(item, RescheduleOutcome(item.booking_id, error=error, stage=Stage.NOT_STARTED))

    async def _reschedule(self, item: _Item) -> RescheduleOutcome | None:
        """One booking's outcome, or None when it goes back in the queue (a 429 within budget)."""
        guard = self.services.guard
        terms = Terms.of(item.evidence) if item.evidence is not None else None
        context_seen: list[AttemptContext] = []

        async def attempt(context: AttemptContext) -> MadeBooking:
            context_seen.append(context)
            return await self._attempt(item, context)

        item.stage = Stage.JOURNAL
        try:
            # Not detached: a batch's cancellation is its flights' (a POST in flight is reported as
            # unknown), and a task a booking would cost more than the rest of the journal.
            new = await guard.run(
                item.booking_id,
                attempt,
                force=self.force,
                detached=False,
                terms=terms,
                reconcile=self._reconcile,
            )
            return RescheduleOutcome(item.booking_id, booking=new)
        except Exception as exc:  # whatever it is, it is this booking's outcome, not the batch's end
            if isinstance(exc, RateLimitError) and item.rate_limited < self.rate_limit_retries:
                # The POST was refused with a 429 (recorded as refused: nothing was spent, so a new
                # claim is safe), or a read was after its own retries: again, behind the others.
                item.rate_limited += 1
                return None
            posting = bool(context_seen) and context_seen[0].post_may_have_left
            error = _as_outcome_error(exc, posting=posting)
            may = isinstance(error, OutcomeUnknownError) or (
                posting and outcome_of(error, post_may_have_left=True) is AttemptState.UNKNOWN
            )
            return RescheduleOutcome(item.booking_id, error=error, stage=item.stage, may_have_happened=may)
        except asyncio.CancelledError:
            posting = bool(context_seen) and context_seen[0].post_may_have_left
            if posting:  # the POST was on its way: nobody can say whether it arrived
                cancelled: AdultWorkError = OutcomeUnknownError(
                    f"the batch was cancelled while RescheduleMadeBooking for booking {item.booking_id} "
                    "was in flight; it is recorded as unknown, and the next attempt reconciles first"
                )
            else:
                cancelled = NotStartedError(
                    f"the batch was cancelled before booking {item.booking_id}'s POST"
                )
            self._report(
                item,
                RescheduleOutcome(
                    item.booking_id, error=cancelled, stage=item.stage, may_have_happened=posting
                ),
            )
            raise

    async def _attempt(self, item: _Item, context: AttemptContext) -> MadeBooking:
        booking: MadeBooking | None = item.evidence
        ledger: _CreditLedger | None = None
        if self.check:
            item.stage = Stage.BALANCE  # first: a balance that cannot be read stops the batch
            ledger = await self._ledger()
            if booking is None:
                item.stage = Stage.DETAILS
                booking = await self.services.details(item.booking_id)
            item.stage = Stage.PREREQUISITES
            check_session_passed(booking, datetime.now(UTC), self.services.zone)
            context.terms = Terms.of(booking)
            ledger.reserve(booking)
        try:
            deadline = await context.before_post()
            item.stage = Stage.POST
            return await self.services.post(item.booking_id, deadline)
        except BaseException as exc:
            if ledger is not None and booking is not None:
                ledger.refund_if_unspent(booking, exc, post_may_have_left=context.post_may_have_left)
            raise

    async def _ledger(self) -> _CreditLedger:
        """The balance, read once for the batch; if it cannot be read, the batch stops."""
        if self.ledger_read is None:
            self.ledger_read = asyncio.ensure_future(self._read_ledger())
        try:
            return await asyncio.shield(self.ledger_read)
        except NotStartedError as exc:  # one error for every booking: do not grow its traceback each time
            raise exc.with_traceback(None) from None

    async def _read_ledger(self) -> _CreditLedger:
        try:
            return _CreditLedger(await self.services.balance())
        except AdultWorkError as exc:
            if self.stopped_by is None:
                self.stopped_by = exc
            raise NotStartedError(
                f"the balance could not be read ({exc}); nothing was sent", stopped_by=exc
            ) from None


def _as_outcome_error(exc: Exception, *, posting: bool) -> AdultWorkError:
    """``exc`` as a booking's outcome: itself if it is ours, else an error that says whether the
    POST may have been sent (the calls below map everything; this is the batch's own net)."""
    if isinstance(exc, AdultWorkError):
        return exc
    what = f"{type(exc).__name__}: {exc}"
    error: AdultWorkError = (
        OutcomeUnknownError(f"the reschedule may have been sent, then this came up: {what}")
        if outcome_of(exc, post_may_have_left=posting) is AttemptState.UNKNOWN
        else UnexpectedError(f"the booking could not be rescheduled: {what}")
    )
    error.__cause__ = stand_in(exc, ())  # never the original: it may carry what a message must not
    return error
