"""``MemoryJournal``: the journal in this process's memory, for tests and throwaway scripts.

It keeps the rules within the process (concurrent callers, a second click, a retried batch), and
forgets everything when the process ends: a re-run, a second worker or another host knows nothing of
it. Every step is synchronous (no ``await`` inside), so each transition is atomic in the event loop.
The process is the only owner: an attempt in flight is alive while this process runs it.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

import attrs

from .._clock import HostInstant, seconds_between
from ._rules import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    FORGET_EVERY,
    AttemptState,
    Decider,
    JournalEntry,
    Key,
    Terms,
    claimed,
    displaced_by_user,
    expired,
    may_claim,
    may_record_outcome,
    may_record_verdict,
    may_renew,
    may_resolve,
)
from ._store import Claim, Clocks, Journal

__all__ = ["MemoryJournal"]

DEFAULT_MAX_ENTRIES = 100_000
_KNOWN_OUTCOMES = (AttemptState.REFUSED, AttemptState.RESCHEDULED)


@attrs.frozen
class _Stored:
    entry: JournalEntry
    started: HostInstant  # the attempt's start on the host's clock, for its age


class MemoryJournal(Journal):
    """A journal in this process's memory.

    Args:
        max_entries: beyond this many entries, the oldest refused or rescheduled ones are forgotten
            first (unknown and in-flight entries never are).
        keep_refused, keep_rescheduled: how long refused and rescheduled entries are kept.
    """

    #: Its claim never suspends, so no cancellation can come between the grant and its caller.
    claims_survive_cancellation = True

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
        clocks: Clocks | None = None,
    ) -> None:
        super().__init__(keep_refused=keep_refused, keep_rescheduled=keep_rescheduled)
        self.max_entries = max_entries
        self.owner = f"memory:{secrets.token_hex(6)}"
        self._clocks = clocks or Clocks()
        self._stored: dict[Key, _Stored] = {}  # in order of last change: oldest first
        self._live: set[tuple[Key, int]] = set()  # this process's attempts under way
        self._results: dict[tuple[str, int], int] = {}  # (api root, new booking id) -> original id
        self._offsets: dict[str, int] = {}
        self._writes = 0

    def __repr__(self) -> str:
        return f"MemoryJournal({len(self._stored)} entries)"

    # --- reading, with liveness and age --------------------------------------------------------

    def _read(self, key: Key) -> JournalEntry | None:
        stored = self._stored.get(key)
        if stored is None:
            return None
        entry = stored.entry
        if entry.state is AttemptState.REFUSED or entry.state is AttemptState.RESCHEDULED:
            return entry  # its outcome is known: neither its age nor an owner matters
        age = seconds_between(stored.started, self._clocks.host())
        if age is None:  # pragma: no cover - a host that gives no boot id
            age = (self._clocks.wall() - entry.started_at).total_seconds()
        alive = (key, entry.attempt) in self._live if entry.state is AttemptState.IN_FLIGHT else None
        return attrs.evolve(entry, age=max(age, 0.0), owner_alive=alive)

    def _write(self, entry: JournalEntry, started: HostInstant | None = None) -> None:
        key = entry.key
        previous = self._stored.pop(key, None)  # re-inserted last: the dict stays oldest-first
        if started is None:
            started = previous.started if previous is not None else self._clocks.host()
        self._stored[key] = _Stored(entry, started)
        if len(self._stored) > self.max_entries:
            self._evict(len(self._stored) - self.max_entries)
        self._writes += 1
        if self._writes % FORGET_EVERY == 0:
            self._forget_old(self._clocks.wall())

    def _evict(self, count: int) -> None:
        # Oldest first, and lazily: an insert past the bound costs the entries it walks, not all.
        known = (k for k, s in self._stored.items() if s.entry.state in _KNOWN_OUTCOMES)
        for key in list(itertools.islice(known, count)):
            self._drop(key)

    def _drop(self, key: Key) -> None:
        stored = self._stored.pop(key)
        if stored.entry.new_booking_id is not None:
            self._results.pop((key.api_root, stored.entry.new_booking_id), None)

    # --- transitions ------------------------------------------------------------------------------

    async def claim(
        self,
        key: Key,
        *,
        force: bool,
        settle: float,
        server_now: datetime | None = None,
        terms: Terms | None = None,
    ) -> Claim:
        entry = self._read(key)
        if not may_claim(entry, force=force):
            return Claim(False, entry)
        new = claimed(
            entry,
            key,
            owner=self.owner,
            now=self._clocks.wall(),
            settle=settle,
            server_now=server_now,
            terms=terms,
        )
        self._live.add((key, new.attempt))
        self._write(new, self._clocks.host())
        return Claim(True, new)

    async def renew(self, entry: JournalEntry, *, server_now: datetime | None = None) -> JournalEntry | None:
        current = self._read(entry.key)
        if not may_renew(current, attempt=entry.attempt, owner=self.owner):
            return None
        assert current is not None
        now = self._clocks.wall()
        renewed = attrs.evolve(current, started_at=now, updated_at=now, server_started_at=server_now, age=0.0)
        self._write(renewed, self._clocks.host())
        return renewed

    async def record_outcome(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        return self.record_outcome_nowait(entry, state, new_booking_id=new_booking_id, terms=terms)

    def record_outcome_nowait(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        key = entry.key
        self._live.discard((key, entry.attempt))
        current = self._stored.get(key)
        if current is None or not may_record_outcome(current.entry, attempt=entry.attempt, owner=self.owner):
            return False
        self._write_outcome(current.entry, state, Decider.ANSWER, new_booking_id, terms)
        return True

    def _write_outcome(
        self,
        entry: JournalEntry,
        state: AttemptState,
        decider: Decider,
        new_booking_id: int | None,
        terms: Terms | None = None,
    ) -> None:
        written = attrs.evolve(
            entry,
            state=state,
            updated_at=self._clocks.wall(),
            new_booking_id=new_booking_id,
            decided_by=decider,
            terms=terms if terms is not None else entry.terms,
            readable=True,
        )
        if entry.new_booking_id is not None:
            self._results.pop((entry.api_root, entry.new_booking_id), None)
        if new_booking_id is not None:
            self._results[(entry.api_root, new_booking_id)] = entry.booking_id
        self._write(written)

    async def record_verdict(
        self,
        key: Key,
        attempt: int,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
    ) -> bool:
        entry = self._read(key)
        if not may_record_verdict(entry, attempt=attempt):
            return False
        if new_booking_id is not None and self._results.get(
            (key.api_root, new_booking_id), key.booking_id
        ) != (key.booking_id):
            return False  # another booking's recorded reschedule
        if entry is None:
            entry = self._unattempted(key)
        self._write_outcome(entry, state, Decider.RECONCILIATION, new_booking_id)
        return True

    async def resolve(self, key: Key, *, rescheduled_into: int | None) -> JournalEntry | None:
        entry = self._read(key)
        if not may_resolve(entry):
            return None
        if entry is None:
            entry = self._unattempted(key)
        if rescheduled_into is not None:
            other = self._results.get((key.api_root, rescheduled_into))
            if other is not None and other != key.booking_id:  # the user says otherwise: the user wins
                displaced = Key(key.api_root, other)
                previous = self._read(displaced)
                self._results.pop((key.api_root, rescheduled_into))
                if displaced_by_user(previous, rescheduled_into):
                    assert previous is not None
                    self._write_outcome(previous, AttemptState.UNKNOWN, Decider.USER, None)
        state = AttemptState.RESCHEDULED if rescheduled_into is not None else AttemptState.REFUSED
        self._write_outcome(entry, state, Decider.USER, rescheduled_into)
        return self._read(key)

    def _unattempted(self, key: Key) -> JournalEntry:
        """A booking the journal has no attempt of, as a verdict or the user's answer records it."""
        now = self._clocks.wall()
        return JournalEntry(
            api_root=key.api_root,
            booking_id=key.booking_id,
            state=AttemptState.UNKNOWN,
            attempt=0,
            started_at=now,
            updated_at=now,
            settle_seconds=0.0,
        )

    async def learn_terms(self, key: Key, attempt: int, terms: Terms) -> None:
        stored = self._stored.get(key)
        if stored is not None and stored.entry.attempt == attempt:
            self._stored[key] = attrs.evolve(stored, entry=attrs.evolve(stored.entry, terms=terms))

    async def learn_server_offset(self, api_root: str, minutes: int) -> None:
        self._offsets[api_root] = minutes

    # --- reads ------------------------------------------------------------------------------------

    async def get(self, key: Key) -> JournalEntry | None:
        return self._read(key)

    async def get_many(self, keys: Iterable[Key]) -> dict[Key, JournalEntry]:
        found = {}
        for key in keys:
            entry = self._read(key)
            if entry is not None:
                found[key] = entry
        return found

    async def outstanding(self, api_root: str, fingerprints: Iterable[str | None]) -> list[JournalEntry]:
        wanted = set(fingerprints)
        found = []
        for key, stored in self._stored.items():
            entry = stored.entry
            if key.api_root != api_root or entry.state in _KNOWN_OUTCOMES:
                continue
            if (entry.terms.fingerprint if entry.terms is not None else None) in wanted:
                read = self._read(key)
                assert read is not None
                found.append(read)
        return found

    async def results_among(self, api_root: str, booking_ids: Iterable[int]) -> dict[int, int]:
        results = self._results
        return {n: results[(api_root, n)] for n in booking_ids if (api_root, n) in results}

    async def entries(
        self, api_root: str | None = None, *, states: Iterable[AttemptState] | None = None
    ) -> list[JournalEntry]:
        wanted = set(states) if states is not None else None
        found = []
        for key in sorted(self._stored):
            if api_root is not None and key.api_root != api_root:
                continue
            entry = self._read(key)
            assert entry is not None
            if wanted is None or entry.effective_state in wanted:
                found.append(entry)
        return found

    async def server_offset(self, api_root: str) -> int | None:
        return self._offsets.get(api_root)

    async def forget_old(self, now: datetime | None = None) -> int:
        return self._forget_old(now or self._clocks.wall())

    def _forget_old(self, now: datetime) -> int:
        # Oldest first, by last change: past the first entry too young to expire in any state,
        # every entry is younger still, so a pass costs the expired entries, not the journal.
        horizon = now - min(self.keep_refused, self.keep_rescheduled)
        old = []
        for key, stored in self._stored.items():
            if stored.entry.updated_at >= horizon:
                break
            if expired(
                stored.entry, now, keep_refused=self.keep_refused, keep_rescheduled=self.keep_rescheduled
            ):
                old.append(key)
        for key in old:
            self._drop(key)
        return len(old)
