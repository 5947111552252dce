"""The sqlite journal's groups of work: what its writer thread commits together.

Each statement gives the GIL back, and getting it again from a busy event loop can take a switch
interval, so a run of claims is read in one statement and written in one, and a run of outcomes is
written in one (a multi-row compare-and-set), however many there are; anything else (a read, a
verdict, a resolution) runs as it is, in queue order.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

import attrs

from ._rules import AttemptState, JournalEntry, Key, Terms, claimed, may_claim
from ._sqlite_statements import record_results, upsert
from ._sqlite_tables import CLAIM_UPSERT, OUTCOME_UPSERT, RowReader, outcome_row, row_of
from ._store import Claim, Clocks
from ._writer import Deliver

__all__ = ["ClaimWork", "Groups", "Operation", "OutcomeWork", "Work"]

log = logging.getLogger("aw_async")


@attrs.frozen
class ClaimWork:
    key: Key
    force: bool
    settle: float
    server_now: datetime | None
    terms: Terms | None


@attrs.frozen
class OutcomeWork:
    entry: JournalEntry
    state: AttemptState
    new_booking_id: int | None
    terms: Terms | None


Operation = Callable[[sqlite3.Connection], Any]
Work = ClaimWork | OutcomeWork | Operation


class Groups:
    """Runs a group of work in an open transaction, as the writer's ``run_group``.

    Args:
        owner: this journal's owner token (a callable: the lock is taken on first use).
        live: the attempts this journal runs now (a claim granted here joins them).
        clocks: the journal's clocks.
        rows: reads rows into entries.
    """

    def __init__(
        self, owner: Callable[[], str], live: set[tuple[Key, int]], clocks: Clocks, rows: RowReader
    ) -> None:
        self._owner = owner
        self._live = live
        self._clocks = clocks
        self._rows = rows

    def run_group(self, connection: sqlite3.Connection, group: list[tuple[Work, Deliver]]) -> list[Any]:
        """A group's work, as if in queue order: its claims and its outcomes written together.

        A claim reads and writes only its own key's row, and an outcome writes only its own key's
        rows (its attempt, its new booking's), so claims and outcomes of different keys commute:
        between two other pieces of work (which may read anything, and run where they stand), every
        claim is written in one run and every outcome in another, unless a key comes back with the
        other kind (a claim after its outcome, an outcome after its claim) or an outcome comes twice
        (the rules let the first one apply): what was gathered is written first. A batch interleaves
        claims and outcomes in the queue; runs of one kind at a time were mostly one piece long.
        """
        results: list[Any] = []
        claims: list[tuple[ClaimWork, Deliver]] = []
        outcomes: list[tuple[OutcomeWork, Deliver]] = []
        claimed_keys: set[Key] = set()
        outcome_keys: set[Key] = set()
        for item in group:
            work = item[0]
            if isinstance(work, ClaimWork):
                if work.key in outcome_keys:
                    results += self._both(connection, claims, outcomes)
                    claimed_keys.clear()
                    outcome_keys.clear()
                claims.append(item)  # type: ignore[arg-type]
                claimed_keys.add(work.key)
            elif isinstance(work, OutcomeWork):
                key = work.entry.key
                if key in claimed_keys or key in outcome_keys:  # a second outcome: the first wins
                    results += self._both(connection, claims, outcomes)
                    claimed_keys.clear()
                    outcome_keys.clear()
                outcomes.append(item)  # type: ignore[arg-type]
                outcome_keys.add(key)
            else:
                if claims or outcomes:
                    results += self._both(connection, claims, outcomes)
                    claimed_keys.clear()
                    outcome_keys.clear()
                results.append((item[1], work(connection), None))
        if claims or outcomes:
            results += self._both(connection, claims, outcomes)
        return results

    def _both(
        self,
        connection: sqlite3.Connection,
        claims: list[tuple[ClaimWork, Deliver]],
        outcomes: list[tuple[OutcomeWork, Deliver]],
    ) -> list[Any]:
        """Write the claims and the outcomes gathered (no key in both), and empty both lists."""
        results: list[Any] = []
        if claims:
            results += self._claims(connection, claims)
            claims.clear()
        if outcomes:
            results += self._outcomes(connection, outcomes)
            outcomes.clear()
        return results

    def _claims(self, connection: sqlite3.Connection, run: list[tuple[ClaimWork, Deliver]]) -> list[Any]:
        now_host, now = self._clocks.host(), self._clocks.wall()
        now_text, owner, live = now.isoformat(), self._owner(), self._live
        current: dict[Key, JournalEntry | None] = dict(
            self._rows.select(connection, list({work.key: None for work, _ in run}), now_host)
        )
        granted: dict[Key, JournalEntry] = {}
        results = []
        for work, deliver in run:
            key = work.key
            entry = current.get(key)
            if may_claim(entry, force=work.force):
                entry = claimed(
                    entry,
                    key,
                    owner=owner,
                    now=now,
                    settle=work.settle,
                    server_now=work.server_now,
                    terms=work.terms,
                )
                live.add((key, entry.attempt))
                current[key] = granted[key] = entry
                results.append((deliver, Claim(True, entry), None))
            else:
                results.append((deliver, Claim(False, entry), None))
        rows = [row_of(entry, now_host, now_text) for entry in granted.values()]
        upsert(connection, rows, CLAIM_UPSERT)
        return results

    def _outcomes(self, connection: sqlite3.Connection, run: list[tuple[OutcomeWork, Deliver]]) -> list[Any]:
        now = self._clocks.wall()
        now_text = now.isoformat()
        # One per key: the last. Keyed by (api_root, booking_id), as the statement returns them.
        latest: dict[tuple[str, int], OutcomeWork] = {
            (work.entry.api_root, work.entry.booking_id): work for work, _ in run
        }
        rows, results_rows = [], []
        for work in latest.values():
            entry = work.entry
            rows.append(outcome_row(entry, work.state, now_text, work.new_booking_id, work.terms))
            if work.new_booking_id is not None:
                results_rows.append((entry.api_root, work.new_booking_id, entry.booking_id, now_text))
        written = set(upsert(connection, rows, OUTCOME_UPSERT))
        record_results(connection, [r for r in results_rows if (r[0], r[2]) in written])
        outcomes = []
        for work, deliver in run:
            where = (work.entry.api_root, work.entry.booking_id)
            ok = where in written and latest[where] is work
            if not ok and deliver is None:
                log.error(
                    "the journal did not record the outcome of %s: no longer its owner's", work.entry.key
                )
            outcomes.append((deliver, ok, None))
        return outcomes
