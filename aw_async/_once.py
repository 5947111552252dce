"""Exactly one reschedule per booking: the journal, single-flight and reconciliation around an
attempt.

:meth:`RescheduleGuard.run` is what both the single reschedule and the batch call for each booking:

1. Concurrent calls for one booking in this process share one flight (:meth:`Journal.single_flight`):
   a single call's in a task of its own, a batch's in the batch's task (no task a booking).
2. The flight claims the booking in the journal (atomically, durably) before anything is sent. A
   claim is refused when the journal says the booking was rescheduled (``AlreadyRescheduledError``,
   zero requests; ``force`` overrides), when another process's attempt is in flight (it waits for
   that attempt's outcome), or when the last outcome is unknown (it reconciles first, and sends again
   only when the listing shows the reschedule did not happen).
3. The attempt (prerequisites, then the one POST) runs; its outcome is recorded, even when the call
   is cancelled (at once when the journal can, :meth:`Journal.settle_nowait`; else shielded):
   rescheduled, refused (nothing was spent: a prerequisite, a 4xx, a request that never left), or
   unknown (the POST may have happened).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import attrs

from .errors import (
    AlreadyRescheduledError,
    ApiError,
    OutcomeUnknownError,
    PreconditionError,
    ServerError,
    TransportError,
)
from .journal import AttemptState, Journal, Owner
from .models import MadeBooking

__all__ = ["Attempt", "RescheduleGuard", "may_have_happened"]

log = logging.getLogger("aw_async")

#: How often a booking in flight in another process is looked at again.
POLL_SECONDS = 0.2


@attrs.define
class Attempt:
    """One attempt's progress, as the attempt reports it: ``posting`` once the POST may leave."""

    posting: bool = False


def may_have_happened(error: BaseException) -> bool:
    """Whether a reschedule that failed with ``error`` during its POST may have happened anyway."""
    if isinstance(error, OutcomeUnknownError | ServerError):
        return True  # no answer, or a 5xx from the server or a gateway: either way, unknown
    # Refused (4xx) or never sent: nothing happened. Anything else (cancelled mid-POST, an
    # undecodable 2xx, the unforeseen) may have.
    return not isinstance(error, PreconditionError | ApiError | TransportError)


Reconcile = Callable[[int, datetime], Awaitable[MadeBooking | None]]


class RescheduleGuard:
    """Runs reschedule attempts under one journal, for one client.

    Args:
        journal: where attempts are recorded.
        lease: how long another process waits for one of this client's attempts before it counts
            as unknown (a crashed process on another host, a hung one).
        reconcile: reads the listing to learn whether a reschedule of a booking made at a time
            happened; records what it found.
    """

    def __init__(self, journal: Journal, *, lease: timedelta, reconcile: Reconcile) -> None:
        self.journal = journal
        self.owner = Owner.here()
        self.lease = lease
        self._reconcile = reconcile

    async def run(
        self,
        booking_id: int,
        attempt: Callable[[Attempt], Awaitable[MadeBooking]],
        *,
        force: bool = False,
        detached: bool = True,
    ) -> MadeBooking:
        """Reschedule ``booking_id`` by running ``attempt`` at most once, as the journal allows.

        ``detached`` (a single call) runs the flight in a task of its own, which outlives a
        cancelled caller while others wait; a batch passes False and runs it in its own task
        (:meth:`Journal.single_flight`).

        Raises:
            AlreadyRescheduledError: the journal (or a reconciliation) says it was rescheduled.
            OutcomeUnknownError: the attempt may have happened; or a reconciliation is ambiguous.
            Whatever ``attempt`` raises.
        """
        return await self.journal.single_flight(
            booking_id, lambda: self._flight(booking_id, attempt, force), detached=detached
        )

    async def _flight(
        self,
        booking_id: int,
        attempt: Callable[[Attempt], Awaitable[MadeBooking]],
        force: bool,
    ) -> MadeBooking:
        try:
            await self._claim(booking_id, force)
        except asyncio.CancelledError:
            # A claim may have been committed after all: give it back, so it does not hold the
            # booking until its lease runs out. (Only our own claim in flight is touched.)
            await asyncio.shield(self.journal.release(booking_id, self.owner))
            raise
        progress = Attempt()
        try:
            new = await attempt(progress)
        except BaseException as exc:
            unknown = progress.posting and may_have_happened(exc)
            await self._settle(booking_id, AttemptState.UNKNOWN if unknown else AttemptState.REFUSED)
            raise
        await self._settle(booking_id, AttemptState.RESCHEDULED, new_booking_id=new.booking_id)
        return new

    async def _claim(self, booking_id: int, force: bool) -> None:
        after_reconcile = False
        while True:
            claim = await self.journal.claim(
                booking_id, owner=self.owner, lease=self.lease, force=force, after_reconcile=after_reconcile
            )
            if claim.granted:
                return
            entry = claim.entry
            assert entry is not None
            state = entry.effective_state(datetime.now(UTC))
            if state is AttemptState.RESCHEDULED:
                assert entry.new_booking_id is not None
                raise AlreadyRescheduledError(booking_id, entry.new_booking_id)
            if state is AttemptState.IN_FLIGHT:  # another process's attempt: wait for its outcome
                await asyncio.sleep(POLL_SECONDS)
                continue
            # UNKNOWN: the last POST may have happened. Look before sending again.
            found = await self._reconcile(booking_id, entry.attempted_at)
            if found is not None:
                raise AlreadyRescheduledError(booking_id, found.booking_id)
            after_reconcile = True

    async def _settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        """Record an outcome; even a cancelled caller waits for this. A journal that cannot record
        it leaves the attempt in flight, which the next attempt reads as unknown and reconciles:
        safe, so the failure is logged rather than raised over the outcome."""
        try:
            if not self.journal.settle_nowait(booking_id, state, new_booking_id=new_booking_id):
                await asyncio.shield(self.journal.settle(booking_id, state, new_booking_id=new_booking_id))
        except Exception:
            log.exception("could not record the outcome (%s) of booking %d's reschedule", state, booking_id)
