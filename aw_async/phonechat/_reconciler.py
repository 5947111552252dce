"""Reconciling unknown outcomes: the journal and MadeBookings read, the pure rules applied
(:mod:`aw_async.journal._reconciliation`), the verdicts recorded against their attempts.

One reconciliation reads the listing once for every attempt it is given (a batch's unknown
outcomes are reconciled together), and weighs each with its twins: the unknown or in-flight
attempts of the journal whose originals have the same terms and whose windows overlap. The journal
is asked only about those twins and about the candidates found. An original whose terms the journal
does not know yet (an attempt made with checks off) is read once, and its terms kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import attrs

from .._server_clock import ServerClock
from ..errors import InFlightElsewhereError, InvalidRequestError, OutcomeUnknownError
from ..journal import AttemptState, Journal, JournalEntry, Key, Terms
from ..journal._reconciliation import (
    DidNotHappen,
    Happened,
    InFlight,
    Undecided,
    Verdict,
    admissible_offsets,
    looks_rescheduled,
    reconcile,
    window,
)
from ..models import MadeBooking, MadeBookingsPage
from ._guard import undecided
from ._listing import Reading, every_booking

__all__ = ["Reconciler"]

Details = Callable[[int], Awaitable[MadeBooking]]
Page = Callable[[int, date], Awaitable[MadeBookingsPage]]


class Reconciler:
    """Reconciles the unknown attempts of one API root.

    Args:
        journal: the journal they are recorded in.
        api_root: the API root of the keys.
        details: reads an original booking (MadeBookingDetails).
        page: reads one page of MadeBookings created since a day, newest first.
        server_clock: the server's clock as the client's answers show it (a window's anchor).
    """

    def __init__(
        self, journal: Journal, *, api_root: str, details: Details, page: Page, server_clock: ServerClock
    ) -> None:
        self.journal = journal
        self.api_root = api_root
        self._details = details
        self._page = page
        self._server_clock = server_clock

    async def reconcile(self, targets: Sequence[JournalEntry]) -> dict[Key, Verdict]:
        """Reconcile ``targets`` (attempts that count as unknown), with their twins; record each
        verdict against its attempt; give the verdict of every attempt weighed (a target whose
        entry moved on meanwhile may be missing: read it again).

        An attempt numbered 0 or less is a question about a time the caller gave, not about a
        recorded attempt: its verdict is recorded only when the journal holds nothing for the key
        (0), or not at all (-1).
        """
        verdicts: dict[Key, Verdict] = {}
        readable = []
        for target in targets:
            if target.readable:
                readable.append(target)
            else:  # a row this version cannot read: no window to look in; only the user can tell
                verdicts[target.key] = Undecided((), None)
        if not readable:
            return verdicts
        targets = [await self._with_terms(target) for target in readable]
        offsets = admissible_offsets(await self.journal.server_offset(self.api_root))
        group = await self._twins(targets, offsets)
        server_now = self._server_clock.now()
        start = min(window(entry, server_now).start for entry in group)
        if server_now is None:  # the server's clock is not known yet: the host's may be a day off
            start -= timedelta(days=1)
        since = (start + timedelta(minutes=offsets[0])).date()  # the server-local day, at the earliest
        wanted = {entry.terms for entry in group}
        reading = Reading()
        found: list[MadeBooking] = []
        async for booking in every_booking(lambda number: self._page(number, since), reading):
            if looks_rescheduled(booking) and Terms.of(booking) in wanted:
                found.append(booking)  # only what may matter is kept: memory stays bounded
        recorded = await self.journal.results_among(self.api_root, [b.booking_id for b in found])
        judged = reconcile(
            group,
            found,
            complete=reading.complete,
            offsets=offsets,
            recorded=frozenset(recorded),
            server_now=self._server_clock.now(),  # known now: the listing's answers carried it
        )
        attempts = {entry.key: entry.attempt for entry in group}
        for key, verdict in judged.items():
            if isinstance(verdict, Happened):
                await self.journal.record_verdict(
                    key, attempts[key], AttemptState.RESCHEDULED, new_booking_id=verdict.booking.booking_id
                )
            elif isinstance(verdict, DidNotHappen):
                await self.journal.record_verdict(key, attempts[key], AttemptState.REFUSED)
        verdicts.update(judged)
        return verdicts

    async def _with_terms(self, entry: JournalEntry) -> JournalEntry:
        if entry.terms is not None:
            return entry
        terms = Terms.of(await self._details(entry.booking_id))
        if entry.attempt > 0:
            await self.journal.learn_terms(entry.key, entry.attempt, terms)
        return attrs.evolve(entry, terms=terms)

    async def _twins(self, targets: list[JournalEntry], offsets: tuple[int, int]) -> list[JournalEntry]:
        """The targets with every twin in flight or unknown whose window may share a candidate with
        theirs (transitively). A naive ``CreateDate`` names an instant only up to the server's offset,
        so a booking may fall in two windows as far apart as the admissible offsets are wide: twins
        weighed apart, each would take the one new booking for its own (docs/api.md, "Reconciling
        an unknown outcome")."""
        fingerprints = {target.terms.fingerprint for target in targets if target.terms is not None}
        by_key: dict[Key, JournalEntry] = {}
        for entry in await self.journal.outstanding(self.api_root, [*fingerprints, None]):
            if entry.readable:
                entry = await self._with_terms(entry)
                if entry.terms is not None and entry.terms.fingerprint in fingerprints:
                    by_key[entry.key] = entry
        for target in targets:  # a recorded attempt is read fresh; a question about a time stays as asked
            if target.attempt <= 0 or target.key not in by_key:
                by_key[target.key] = target
        chosen = {target.key for target in targets}
        server_now = self._server_clock.now()
        spans = {key: window(entry, server_now) for key, entry in by_key.items()}
        reach = timedelta(minutes=offsets[1] - offsets[0])  # how far apart one candidate's readings lie
        growing = True
        while growing:
            growing = False
            for key, entry in by_key.items():
                if key in chosen:
                    continue
                span = spans[key]
                if any(
                    by_key[other].terms == entry.terms
                    and spans[other].start <= span.end + reach
                    and span.start <= spans[other].end + reach
                    for other in chosen
                ):
                    chosen.add(key)
                    growing = True
        return [by_key[key] for key in sorted(chosen)]

    async def answer(self, key: Key, started: datetime | None, *, settle: float) -> MadeBooking | None:
        """The user's question (``PhoneChatService.reconcile``): did the reschedule of ``key``
        happen? The new booking if it did, None if it provably did not.

        Args:
            started: when the attempt asked about started; None for the journal's last attempt.
                Asked about a time, what is found is recorded only when the journal holds nothing
                for the key (attempt 0), never over an attempt it holds (-1).
            settle: the settle window of such an attempt.
        """
        entry = await self.journal.get(key)
        if started is None:
            if entry is None:
                raise InvalidRequestError(
                    "since", f"the journal has no attempt of booking {key.booking_id}: say since when to look"
                )
            state = entry.effective_state
            if state is AttemptState.RESCHEDULED and entry.new_booking_id is not None:
                return await self._details(entry.new_booking_id)
            if state is AttemptState.REFUSED:
                return None
            if state is AttemptState.IN_FLIGHT:
                raise InFlightElsewhereError(key.booking_id, entry.started_at)
            question = entry
        else:
            now = datetime.now(UTC)
            question = JournalEntry(
                api_root=key.api_root,
                booking_id=key.booking_id,
                state=AttemptState.UNKNOWN,
                attempt=0 if entry is None else -1,
                started_at=started.astimezone(UTC),
                updated_at=now,
                settle_seconds=settle,
                age=max((now - started).total_seconds(), 0.0),
            )
        verdict = (await self.reconcile([question])).get(key)
        if isinstance(verdict, Happened):
            return verdict.booking
        if isinstance(verdict, DidNotHappen):
            return None
        if isinstance(verdict, Undecided):
            raise undecided(key, verdict)
        if isinstance(verdict, InFlight):
            raise InFlightElsewhereError(key.booking_id, verdict.since)
        raise OutcomeUnknownError(  # the entry moved on meanwhile: another process is at work on it
            f"booking {key.booking_id}'s journal entry changed while it was reconciled; ask again",
            retry_after=1.0,
        )
