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

from ._rules import AttemptState, Decider, JournalEntry, Key, Terms, claimed, may_claim
from ._sqlite_tables import NO_START, OUTCOME_UPSERT, SET_ALL, RowReader, record_results, row_of, upsert
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
        """A group's work in queue order: runs of claims, and runs of outcomes, written together."""
        results: list[Any] = []
        run: list[tuple[Work, Deliver]] = []
        for item in group:
            if run and type(item[0]) is not type(run[0][0]):
                results += self._run(connection, run)
                run = []
            run.append(item)
        if run:
            results += self._run(connection, run)
        return results

    def _run(self, connection: sqlite3.Connection, run: list[tuple[Work, Deliver]]) -> list[Any]:
        first = run[0][0]
        if isinstance(first, ClaimWork):
            return self._claims(connection, run)  # type: ignore[arg-type]
        if isinstance(first, OutcomeWork):
            return self._outcomes(connection, run)  # type: ignore[arg-type]
        return [(deliver, work(connection), None) for work, deliver in run]  # type: ignore[operator]

    def _claims(self, connection: sqlite3.Connection, run: list[tuple[ClaimWork, Deliver]]) -> list[Any]:
        now_host, now = self._clocks.host(), self._clocks.wall()
        current: dict[Key, JournalEntry | None] = dict(
            self._rows.select(connection, list({work.key: None for work, _ in run}), now_host)
        )
        granted: dict[Key, JournalEntry] = {}
        results = []
        for work, deliver in run:
            entry = current.get(work.key)
            if may_claim(entry, force=work.force):
                entry = claimed(
                    entry,
                    work.key,
                    owner=self._owner(),
                    now=now,
                    settle=work.settle,
                    server_now=work.server_now,
                    terms=work.terms,
                )
                self._live.add((work.key, entry.attempt))
                current[work.key] = granted[work.key] = entry
                results.append((deliver, Claim(True, entry), None))
            else:
                results.append((deliver, Claim(False, entry), None))
        rows = [row_of(entry, now_host) for entry in granted.values()]
        upsert(connection, rows, f" ON CONFLICT DO UPDATE SET {SET_ALL}")
        return results

    def _outcomes(self, connection: sqlite3.Connection, run: list[tuple[OutcomeWork, Deliver]]) -> list[Any]:
        now = self._clocks.wall()
        latest: dict[Key, OutcomeWork] = {work.entry.key: work for work, _ in run}  # one per key: the last
        rows, results_rows = [], []
        for work in latest.values():
            entry = work.entry
            settled = attrs.evolve(
                entry,
                state=work.state,
                updated_at=now,
                new_booking_id=work.new_booking_id,
                decided_by=Decider.ANSWER,
                terms=work.terms if work.terms is not None else entry.terms,
            )
            rows.append(row_of(settled, NO_START))
            if work.new_booking_id is not None:
                results_rows.append((entry.api_root, work.new_booking_id, entry.booking_id, now.isoformat()))
        written = {Key(r[0], r[1]) for r in upsert(connection, rows, OUTCOME_UPSERT)}
        record_results(connection, [r for r in results_rows if Key(r[0], r[2]) in written])
        outcomes = []
        for work, deliver in run:
            ok = work.entry.key in written and latest[work.entry.key] is work
            if not ok and deliver is None:
                log.error(
                    "the journal did not record the outcome of %s: no longer its owner's", work.entry.key
                )
            outcomes.append((deliver, ok, None))
        return outcomes
