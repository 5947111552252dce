"""Exactly one reschedule per booking: the journal's rules around one attempt.

:meth:`RescheduleGuard.run` is what the single reschedule and the batch both call for a booking:

1. Concurrent calls for one booking in this process (one client, or clients sharing a journal) share
   one flight (:class:`~aw_async._tasks.SingleFlight`, one per journal).
2. The flight claims the booking in the journal (atomically, durably) before anything is sent. A
   refused claim means: rescheduled already (:class:`~aw_async.errors.AlreadyRescheduledError`, zero
   requests, unless forced); in flight with a live owner elsewhere (waited for, a bounded time, then
   :class:`~aw_async.errors.InFlightElsewhereError`); or unknown (reconciled: sent again only once the
   reconciliation records that it did not happen).
3. The attempt runs (its prerequisites, then the one POST). Right before the POST it proves that it
   still holds its claim (:meth:`AttemptContext.before_post`): its attempt is renewed if it was slow to
   get there, the store confirms the owner's liveness, and the POST gets a deadline after which the
   transport never lets it leave. So the attempt's settle window (:func:`~aw_async.journal._rules.
   settle_seconds`) bounds when a POST of it can still land.
4. Its outcome is recorded against its own attempt (compare-and-set), even when the call is
   cancelled: ``rescheduled``, ``refused`` or ``unknown``, as :func:`~aw_async.journal.outcome_of`
   decides. A new booking's ``CreateDate`` beside the server's clock teaches the journal the server's
   zone offset.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable

import attrs

from .._clock import SYSTEM_CLOCK, Clock
from .._server_clock import ServerClock, offset_minutes
from .._tasks import SingleFlight
from ..errors import AlreadyRescheduledError, InFlightElsewhereError, JournalError, OutcomeUnknownError
from ..journal import AttemptState, Claim, Journal, JournalEntry, Key, Terms, outcome_of
from ..journal._reconciliation import DidNotHappen, Happened, InFlight, Undecided, Verdict
from ..journal._rules import LEAVE_WITHIN
from ..models import MadeBooking

__all__ = ["AttemptContext", "Reconcile", "RescheduleGuard", "flights_of", "undecided"]

log = logging.getLogger("aw_async")

#: How often a booking in flight with a live owner elsewhere is looked at again (doubling to 1 s).
FIRST_POLL = 0.05
#: Reconciliations before giving up (other processes keep making new attempts meanwhile).
MAX_ROUNDS = 8
#: Renew an attempt before its POST when this much of :data:`LEAVE_WITHIN` is gone.
RENEW_AFTER = LEAVE_WITHIN / 2

#: Reconciles one unknown attempt, recording what it established; gives the verdict about it (None:
#: its entry moved on meanwhile, so the claim is simply tried again).
Reconcile = Callable[[JournalEntry], Awaitable[Verdict | None]]

_flights: weakref.WeakKeyDictionary[Journal, SingleFlight[Key]] = weakref.WeakKeyDictionary()


def flights_of(journal: Journal) -> SingleFlight[Key]:
    """The flights of every client that shares ``journal`` in this process."""
    flights = _flights.get(journal)
    if flights is None:
        flights = _flights[journal] = SingleFlight()
    return flights


@attrs.define
class AttemptContext:
    """One granted attempt, as its work sees it."""

    entry: JournalEntry
    """The attempt (renewed, if it had to be)."""
    started: float
    """When the attempt (or its renewal) began on the client's clock (the transport's, which holds
    the POST to its deadline), read before the claim was sent: the deadline counts from here."""
    guard: RescheduleGuard
    terms: Terms | None = None
    """The original's terms, once the work has read the booking (kept with the outcome)."""
    post_may_have_left: bool = False
    """True from the moment the POST is handed to the transport."""

    async def before_post(self) -> float:
        """Prove the claim is still held, right before the POST; the deadline (a reading of the
        client's clock) after which the POST must not leave.

        Raises:
            JournalError: the claim is no longer this owner's (nothing is sent).
        """
        journal, clock = self.guard.journal, self.guard.clock
        if clock.now() - self.started > RENEW_AFTER:
            started = clock.now()
            renewed = await journal.renew(self.entry, server_now=self.guard.server_clock.now())
            if renewed is None:
                raise JournalError(
                    f"the claim on {self.entry.key} was lost before its POST; nothing was sent"
                )
            self.entry, self.started = renewed, started
        if not await journal.still_holds(self.entry):
            raise JournalError(f"the claim on {self.entry.key} was lost before its POST; nothing was sent")
        self.post_may_have_left = True
        return self.started + LEAVE_WITHIN


Attempt = Callable[[AttemptContext], Awaitable[MadeBooking]]


class RescheduleGuard:
    """Runs reschedule attempts under one journal, for one client.

    Args:
        journal: where attempts are recorded.
        api_root: the client's normalised ``base_url``: the first half of every key.
        settle: this client's settle window, in seconds (its POST's whole time budget and more).
        wait_elsewhere: how long a call waits for another process's attempt in flight.
        server_clock: the server's clock, as the client's answers show it.
        reconcile: reconciles an unknown attempt (reads MadeBookings; records its verdict).
        clock: the client's clock: the POST's deadline, and the waits for another owner.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        api_root: str,
        settle: float,
        wait_elsewhere: float,
        server_clock: ServerClock,
        reconcile: Reconcile,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.journal = journal
        self.clock = clock
        self.api_root = api_root
        self.settle = settle
        self.wait_elsewhere = wait_elsewhere
        self.server_clock = server_clock
        self.reconcile = reconcile
        self._flights = flights_of(journal)
        self._offset: int | None = None  # the last offset this client taught the journal

    def key(self, booking_id: int) -> Key:
        return Key(self.api_root, booking_id)

    async def run(
        self,
        booking_id: int,
        attempt: Attempt,
        *,
        force: bool = False,
        detached: bool = True,
        terms: Terms | None = None,
        reconcile: Reconcile | None = None,
    ) -> MadeBooking:
        """Reschedule ``booking_id`` by running ``attempt`` at most once, as the journal allows.

        Args:
            detached: a single call's flight runs in a task of its own, which outlives a cancelled
                caller while others wait; a batch passes False and runs it in its own task.
            terms: the original's terms when the caller already holds the booking.
            reconcile: reconciles unknown attempts instead of the guard's own (a batch's, which
                read the listing once for all of its bookings).

        Raises:
            AlreadyRescheduledError: the journal (or a reconciliation) says it was rescheduled.
            InFlightElsewhereError: another owner's attempt is in flight, past the wait.
            OutcomeUnknownError: a reconciliation cannot tell yet (``.retry_after``) or at all
                (``.candidates``), or this attempt's POST may have happened.
            JournalError: the journal failed; nothing was sent.
            Whatever ``attempt`` raises.
        """
        key = self.key(booking_id)
        return await self._flights.run(
            key,
            lambda: self._flight(key, attempt, force, terms, reconcile or self.reconcile),
            detached=detached,
        )

    async def _flight(
        self, key: Key, attempt: Attempt, force: bool, terms: Terms | None, reconcile: Reconcile
    ) -> MadeBooking:
        started, entry = await self._claim(key, force, terms, reconcile)
        context = AttemptContext(entry, started, self, terms)
        try:
            new = await attempt(context)
        except BaseException as exc:
            state = outcome_of(exc, post_may_have_left=context.post_may_have_left)
            await self._record(context, state)
            if isinstance(exc, OutcomeUnknownError) and not exc.candidates:
                raise _lost(key, exc, self.settle, forced=force) from exc
            raise
        context.terms = Terms.of(new)  # a reschedule keeps the original's terms
        await self._record(context, AttemptState.RESCHEDULED, new.booking_id)
        await self._learn_offset(new)
        return new

    async def _claim(
        self, key: Key, force: bool, terms: Terms | None, reconcile: Reconcile
    ) -> tuple[float, JournalEntry]:
        """Claim ``key``: (when the claim was sent, the granted attempt), or raise why not.

        Forced or not, an unknown outcome is reconciled first (docs/api.md, "Reconciling an unknown
        outcome"): the journal learns the new booking of a reschedule that happened, and nothing is
        sent while that cannot be told. Force then overrides "rescheduled" only: the claim is
        forced once the entry is known to be rescheduled, never while it is unknown."""
        waited_since: float | None = None
        poll = FIRST_POLL
        reconciled = 0
        forcing = False  # whether the next claim may take a rescheduled entry (force, once it is known)
        while reconciled < MAX_ROUNDS:
            entry = await self._claim_once(key, forcing, terms)
            if isinstance(entry, tuple):
                return entry
            state = entry.effective_state
            if state is AttemptState.RESCHEDULED:
                assert entry.new_booking_id is not None  # every way to "rescheduled" names the booking
                if force and not forcing:
                    forcing = True
                    continue  # on purpose: again, over the reschedule the journal knows
                raise AlreadyRescheduledError(key.booking_id, entry.new_booking_id)
            if state is AttemptState.UNKNOWN:
                reconciled += 1
                verdict = await reconcile(entry)
                if isinstance(verdict, Happened):
                    if force:  # recorded as rescheduled: forced, it is done again on purpose
                        forcing = True
                        continue
                    raise AlreadyRescheduledError(key.booking_id, verdict.booking.booking_id)
                if isinstance(verdict, Undecided):
                    raise undecided(key, verdict)
                if verdict is None or isinstance(verdict, DidNotHappen):
                    continue  # recorded as refused (or someone moved on): claim again
                assert isinstance(verdict, InFlight)
            # In flight with a live owner (here or elsewhere): wait for its outcome, a bounded time.
            now = self.clock.now()
            waited_since = now if waited_since is None else waited_since
            if now - waited_since >= self.wait_elsewhere:
                raise InFlightElsewhereError(key.booking_id, entry.started_at)
            await self.clock.sleep(poll)
            poll = min(poll * 2, 1.0)
        raise OutcomeUnknownError(
            f"booking {key.booking_id}: other attempts kept changing its journal entry; nothing was sent",
            retry_after=1.0,
        )

    async def _claim_once(
        self, key: Key, force: bool, terms: Terms | None
    ) -> tuple[float, JournalEntry] | JournalEntry:
        """One claim: (start, entry) if granted, else the entry that refused it. A caller cancelled
        while its claim is on its way gives the claim back once it lands (nothing was sent): the
        store does, when it says it can (``claims_survive_cancellation``), else a task does here."""
        started = self.clock.now()
        journal = self.journal
        claiming = journal.claim(
            key, force=force, settle=self.settle, server_now=self.server_clock.now(), terms=terms
        )
        if journal.claims_survive_cancellation:
            claim = await claiming
        else:
            claim = await self._claim_in_a_task(claiming)
        assert claim.entry is not None
        return (started, claim.entry) if claim.granted else claim.entry

    async def _claim_in_a_task(self, claiming: Awaitable[Claim]) -> Claim:
        task = asyncio.ensure_future(claiming)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait((task,))
            if not task.cancelled() and task.exception() is None and task.result().granted:
                entry = task.result().entry
                assert entry is not None
                await asyncio.shield(self.journal.record_outcome(entry, AttemptState.REFUSED))
            raise

    async def _record(
        self, context: AttemptContext, state: AttemptState, new_booking_id: int | None = None
    ) -> None:
        """Record an outcome against the attempt; even a cancelled caller waits for this. A journal
        that cannot record it leaves the attempt in flight under an owner that no longer runs it,
        which the next attempt reads as unknown and reconciles: safe, so the failure is logged
        rather than raised over the outcome."""
        entry, terms = context.entry, context.terms
        try:
            if not self.journal.record_outcome_nowait(
                entry, state, new_booking_id=new_booking_id, terms=terms
            ):
                recording = self.journal.record_outcome(
                    entry, state, new_booking_id=new_booking_id, terms=terms
                )
                if not await asyncio.shield(recording):
                    log.error("the journal did not record the outcome (%s) of %s", state, entry.key)
        except Exception:
            log.exception("could not record the outcome (%s) of %s", state, entry.key)

    async def _learn_offset(self, new: MadeBooking) -> None:
        """Teach the journal the server's zone offset, from a booking it has just created."""
        minutes = offset_minutes(new.create_date, self.server_clock.now())
        if minutes is None or minutes == self._offset:
            return
        try:
            await self.journal.learn_server_offset(self.api_root, minutes)
        except Exception:  # a hint for later reconciliations: never worth failing a reschedule for
            log.warning("could not keep the server's offset in the journal", exc_info=True)
        else:
            self._offset = minutes


def _lost(key: Key, lost: OutcomeUnknownError, settle: float, *, forced: bool) -> OutcomeUnknownError:
    """The error of a reschedule whose answer was lost, with the advice that holds for it (the
    transport's is for any call that changes state: "check before sending it again"). A forced call
    reconciles first too, but sends again even when the reschedule went through: the advice of a
    forced call's error says so, in words that fit the library and the command line alike."""
    forcing = (
        "; a forced call reconciles first too, but then sends it again even if this one went through"
        if forced
        else ""
    )
    return OutcomeUnknownError(
        f"booking {key.booking_id}: the reschedule may have happened, but no answer came; it is recorded "
        f"as unknown and was not sent again. Calling again{' unforced' if forced else ''} is safe: it "
        "reconciles first, and sends only once it is proven the reschedule did not happen (which can be "
        f"told in about {settle:.0f} s){forcing}",
        method=lost.method,
        url=lost.url,
        attempts=lost.attempts,
        retry_after=settle,
    )


def undecided(key: Key, verdict: Undecided) -> OutcomeUnknownError:
    if verdict.candidates:
        ids = ", ".join(map(str, verdict.candidates))
        what = f"may have been rescheduled into any of bookings {ids}"
    else:
        what = "may have been rescheduled"
    if verdict.retry_after is not None:
        advice = f"call again in {verdict.retry_after:.0f} s: a reconciliation may tell by then"
    else:
        advice = "look at those bookings, then record the answer with resolve (aw-async journal resolve)"
    return OutcomeUnknownError(
        f"booking {key.booking_id} {what}; nothing was sent: {advice}",
        candidates=verdict.candidates,
        retry_after=verdict.retry_after,
    )
