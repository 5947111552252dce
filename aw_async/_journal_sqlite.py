"""``SqliteJournal``: the journal in a sqlite3 file, durable across crashes and shared by processes.

How it keeps its promises:

- **Durable before the POST**: :meth:`claim` returns only once its transaction is committed
  (``synchronous=FULL``: on disk, not just handed to the OS).
- **Atomic across processes**: every transaction is ``BEGIN IMMEDIATE``, which takes sqlite's write
  lock first, so two processes claiming one booking are serialised and the second sees the first's
  claim. A busy database is waited for (``busy_timeout``), not failed.
- **Never blocking the event loop**: all disk I/O happens on the journal's own thread
  (:mod:`._sqlite_writer`), with group commit.
- **Fast enough for a batch**: every statement releases the GIL, and getting it back from a busy
  event loop can take a switch interval, so the thread writes a run of first claims in two
  statements (which are new? insert those) and a run of outcomes in one (a multi-row upsert),
  however many there are. An outcome is queued, not awaited: it is committed with the next group
  (and before :meth:`aclose` returns). If the process dies first, the attempt is still in flight
  under a dead owner, which the next attempt reads as unknown and reconciles: late, never wrong.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ._sqlite_writer import Deliver, SqliteWriter
from .errors import JournalError
from .journal import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    AttemptState,
    Claim,
    Journal,
    JournalEntry,
    Owner,
    decide_claim,
    in_flight,
)

__all__ = ["SqliteJournal"]

log = logging.getLogger("aw_async")

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reschedules (
    booking_id     INTEGER PRIMARY KEY,
    state          TEXT    NOT NULL,
    attempted_at   TEXT    NOT NULL,
    updated_at     TEXT    NOT NULL,
    new_booking_id INTEGER,
    owner          TEXT,
    lease_until    TEXT
)
"""
_COLUMNS = "booking_id, state, attempted_at, updated_at, new_booking_id, owner, lease_until"
_ROWS_PER_STATEMENT = 100  # 7 values a row: under the 999 variables older sqlite builds allow
# An outcome: the attempt's attempted_at stays, the owner and lease go (a reconciliation of a
# booking never attempted here inserts it, attempted now).
_UPSERT_OUTCOME = (
    " ON CONFLICT (booking_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,"
    " new_booking_id = excluded.new_booking_id, owner = NULL, lease_until = NULL"
)

Row = tuple[object, ...]


@attrs.frozen
class _Work:
    """A piece of work for the journal's thread. ``claim`` (a first claim's row and the claim it
    grants when the booking is new) and ``outcome`` (an outcome's row) mark the two kinds a batch
    sends by the thousand, which the thread writes a run at a time."""

    operation: Callable[[sqlite3.Connection], Any]
    claim: tuple[Row, Claim] | None = None
    outcome: Row | None = None


def _row(entry: JournalEntry) -> Row:
    return (
        entry.booking_id,
        entry.state.value,
        entry.attempted_at.isoformat(),
        entry.updated_at.isoformat(),
        entry.new_booking_id,
        entry.owner,
        entry.lease_until.isoformat() if entry.lease_until else None,
    )


def _entry(row: tuple[Any, ...]) -> JournalEntry:
    booking_id, state, attempted_at, updated_at, new_booking_id, owner, lease_until = row
    return JournalEntry(
        booking_id=booking_id,
        state=AttemptState(state),
        attempted_at=datetime.fromisoformat(attempted_at),
        updated_at=datetime.fromisoformat(updated_at),
        new_booking_id=new_booking_id,
        owner=owner,
        lease_until=datetime.fromisoformat(lease_until) if lease_until else None,
    )


def _select(connection: sqlite3.Connection, booking_id: int) -> JournalEntry | None:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM reschedules WHERE booking_id = ?", (booking_id,)
    ).fetchone()
    return _entry(row) if row is not None else None


def _insert(connection: sqlite3.Connection, rows: list[Row], tail: str = "") -> None:
    """Insert ``rows`` (all seven columns), a chunk of rows a statement; ``tail`` after VALUES."""
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[start : start + _ROWS_PER_STATEMENT]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk))
        connection.execute(
            f"INSERT INTO reschedules ({_COLUMNS}) VALUES {values}{tail}", [v for row in chunk for v in row]
        )


def _existing(connection: sqlite3.Connection, booking_ids: list[int]) -> set[int]:
    found: set[int] = set()
    for start in range(0, len(booking_ids), 900):
        chunk = booking_ids[start : start + 900]
        query = f"SELECT booking_id FROM reschedules WHERE booking_id IN ({', '.join('?' * len(chunk))})"
        found.update(booking_id for (booking_id,) in connection.execute(query, chunk).fetchall())
    return found


def _run_group(connection: sqlite3.Connection, group: list[tuple[_Work, Deliver]]) -> list[Any]:
    """A group's work, in queue order: runs of claims and of outcomes written together."""
    results: list[Any] = []
    claims: list[tuple[_Work, Deliver]] = []
    outcomes: list[tuple[_Work, Deliver]] = []

    def flush_claims() -> None:
        if not claims:
            return
        rows = {work.claim[0][0]: work.claim[0] for work, _ in claims if work.claim}  # by booking id
        new = set(rows) - _existing(connection, list(rows))  # type: ignore[arg-type]
        _insert(connection, [rows[booking_id] for booking_id in new])
        for work, deliver in claims:
            assert work.claim is not None
            if work.claim[0][0] in new:
                new.discard(work.claim[0][0])  # one grant per booking, even if claimed twice here
                results.append((deliver, work.claim[1], None))
            else:  # the booking is known: the journal's rule decides
                results.append((deliver, work.operation(connection), None))
        claims.clear()

    def flush_outcomes() -> None:
        if not outcomes:
            return
        latest = {work.outcome[0]: work.outcome for work, _ in outcomes if work.outcome}  # the last wins
        _insert(connection, list(latest.values()), _UPSERT_OUTCOME)
        results.extend((deliver, None, None) for _, deliver in outcomes)
        outcomes.clear()

    for work, deliver in group:
        if work.claim is not None:
            flush_outcomes()
            claims.append((work, deliver))
        elif work.outcome is not None:
            flush_claims()
            outcomes.append((work, deliver))
        else:  # no run overtakes what was queued before it
            flush_claims()
            flush_outcomes()
            results.append((deliver, work.operation(connection), None))
    flush_claims()
    flush_outcomes()
    return results


class SqliteJournal(Journal):
    """A journal in a sqlite3 file: durable across crashes, shared by the processes of one machine.

    Args:
        path: the database file (created, with its folder, if missing).
        busy_timeout: how long to wait for another process's transaction, in seconds.

    Close it with :meth:`aclose` (a client closes the journal it opened from a path).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
    ) -> None:
        super().__init__(keep_refused=keep_refused, keep_rescheduled=keep_rescheduled)
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._writer: SqliteWriter[_Work] = SqliteWriter(
            self._connect, _run_group, f"aw-journal {self.path.name}"
        )
        self._settled = 0

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        # Two processes opening a new file at once race to switch it to WAL and create the table;
        # sqlite answers the loser "locked" at once, without its busy handler: try again, briefly.
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("PRAGMA synchronous=FULL")
                connection.execute(_SCHEMA)
                return connection
            except sqlite3.OperationalError:
                if time.monotonic() >= deadline:
                    connection.close()
                    raise
                time.sleep(0.02)  # on the journal's own thread, never the event loop's

    async def _queue(self, work: _Work) -> asyncio.Future[Any]:
        try:
            return await self._writer.submit(work)
        except sqlite3.Error as exc:  # the file could not be opened
            raise self._failed(exc) from exc

    async def _do(self, operation: Callable[[sqlite3.Connection], T], **marks: Any) -> T:
        """Run ``operation`` on the journal's thread, committed.

        Raises:
            JournalError: the database could not be opened, read or written (a full disk, a lock
                held past ``busy_timeout``, a file that is not a database).
        """
        future = await self._queue(_Work(operation, **marks))
        try:
            return await future  # type: ignore[no-any-return]
        except sqlite3.Error as exc:
            raise self._failed(exc) from exc

    def _failed(self, exc: sqlite3.Error) -> JournalError:
        return JournalError(f"the journal {str(self.path)!r} failed: {exc}")

    async def aclose(self) -> None:
        await self._writer.close()

    # --- the journal ----------------------------------------------------------------------------

    async def get(self, booking_id: int) -> JournalEntry | None:
        return await self._do(lambda connection: _select(connection, booking_id))

    async def claim(
        self,
        booking_id: int,
        *,
        owner: Owner,
        lease: timedelta,
        force: bool = False,
        after_reconcile: bool = False,
    ) -> Claim:
        claimed = in_flight(booking_id, owner, datetime.now(UTC), lease)

        def operation(connection: sqlite3.Connection) -> Claim:  # for a booking the journal knows
            entry = _select(connection, booking_id)
            now = datetime.now(UTC)
            if decide_claim(entry, now=now, force=force, after_reconcile=after_reconcile) == "refuse":
                return Claim(False, entry)
            _insert(connection, [_row(claimed)], " ON CONFLICT (booking_id) DO UPDATE SET " + _ALL_COLUMNS)
            return Claim(True, claimed)

        return await self._do(operation, claim=(_row(claimed), Claim(True, claimed)))

    async def release(self, booking_id: int, owner: Owner) -> None:
        now = datetime.now(UTC).isoformat()
        statement = (
            "UPDATE reschedules SET state = ?, updated_at = ?, owner = NULL, lease_until = NULL"
            " WHERE booking_id = ? AND state = ? AND owner = ?"
        )
        parameters = (AttemptState.REFUSED.value, now, booking_id, AttemptState.IN_FLIGHT.value, str(owner))
        await self._do(lambda connection: connection.execute(statement, parameters).rowcount)

    async def settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        try:  # opens the file if need be; the outcome itself is not awaited: see the module's docstring
            await self._writer.post(self._outcome(booking_id, state, new_booking_id))
        except sqlite3.Error as exc:  # the file could not be opened
            raise self._failed(exc) from exc
        self._count_settled()

    def settle_nowait(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> bool:
        if not self._writer.post_nowait(self._outcome(booking_id, state, new_booking_id)):
            return False  # not open yet: settle() opens it
        self._count_settled()
        return True

    @staticmethod
    def _outcome(booking_id: int, state: AttemptState, new_booking_id: int | None) -> _Work:
        now = datetime.now(UTC).isoformat()
        row: Row = (booking_id, state.value, now, now, new_booking_id, None, None)
        return _Work(lambda connection: _insert(connection, [row], _UPSERT_OUTCOME), outcome=row)

    def _count_settled(self) -> None:
        self._settled += 1
        if self._settled % 1024 == 0:  # forgetting is housekeeping: queued, not awaited
            self._writer.post_nowait(_Work(self._forget_operation(datetime.now(UTC))))

    async def entries(self) -> list[JournalEntry]:
        def operation(connection: sqlite3.Connection) -> list[JournalEntry]:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM reschedules ORDER BY booking_id").fetchall()
            return [_entry(row) for row in rows]

        return await self._do(operation)

    async def forget_old(self, now: datetime | None = None) -> int:
        return await self._do(self._forget_operation(now or datetime.now(UTC)))

    def _forget_operation(self, at: datetime) -> Callable[[sqlite3.Connection], int]:
        def operation(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "DELETE FROM reschedules"
                " WHERE (state = ? AND updated_at < ?) OR (state = ? AND updated_at < ?)",
                (
                    AttemptState.REFUSED.value,
                    (at - self.keep_refused).isoformat(),
                    AttemptState.RESCHEDULED.value,
                    (at - self.keep_rescheduled).isoformat(),
                ),
            )
            return cursor.rowcount

        return operation


_ALL_COLUMNS = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[1:])
