"""The sqlite journal's statements: the writes and the reads :mod:`._sqlite` and
:mod:`._sqlite_groups` run on the tables of :mod:`._sqlite_tables`.

Each statement gives the GIL back and waits for it again, so a run of rows is written in one
statement a chunk, and every text is made once per size (the same text every time, which the
connection's statement cache finds instead of compiling it again).
"""

from __future__ import annotations

import bisect
import functools
import sqlite3
from datetime import datetime
from typing import TypeVar

import attrs

from .._clock import HostInstant
from ._rules import AttemptState, Decider, JournalEntry, Key
from ._sqlite_tables import CLAIM_UPSERT, COLUMNS, ROWS_PER_STATEMENT, WIDTH, Row, row_of

T = TypeVar("T")

__all__ = [
    "every_row",
    "forget_rows",
    "offset_of",
    "outstanding_rows",
    "record_results",
    "result_of",
    "results_of",
    "upsert",
    "write_outcome_row",
]


def upsert(connection: sqlite3.Connection, rows: list[Row], tail: str) -> list[Row]:
    """Insert ``rows``, a chunk a statement, with ``tail`` (an ``ON CONFLICT ...``); what it returns.

    A chunk is padded with copies of its last row up to a size of :data:`_SIZES`, so that a dozen
    statement texts serve every run and all stay in the connection's statement cache (there were
    about 140 texts, over its 128: compiling a statement of 60 rows again costs more than writing them).
    A copy changes nothing: a claim's writes the same values again, an outcome's finds its attempt
    no longer in flight (its compare-and-set fails, and it returns no row).
    """
    returned: list[Row] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = _padded(rows[start : start + ROWS_PER_STATEMENT])
        cursor = connection.execute(_insert(len(chunk), tail), [v for row in chunk for v in row])
        returned += cursor.fetchall()
    return returned


#: The sizes a statement's rows are padded to: at most a third more rows than asked.
_SIZES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)


def _padded(rows: list[T]) -> list[T]:
    size = _SIZES[bisect.bisect_left(_SIZES, len(rows))]
    return rows + [rows[-1]] * (size - len(rows)) if size > len(rows) else rows


@functools.cache
def _insert(count: int, tail: str) -> str:
    """The statement that inserts ``count`` rows (made once: the same text every time, which the
    connection's statement cache finds)."""
    values = ", ".join(["(" + ", ".join("?" * WIDTH) + ")"] * count)
    return f"INSERT INTO attempts ({COLUMNS}) VALUES {values}{tail}"


def record_results(connection: sqlite3.Connection, rows: list[tuple[str, int, int, str]]) -> None:
    """Which booking each new booking is the reschedule of (the latest word wins). In one statement
    a chunk, not ``executemany`` (which gives the GIL back, and waits for it again, row by row),
    padded as :func:`upsert` pads (a copy of the last row writes it again)."""
    for start in range(0, len(rows), _RESULTS_PER_STATEMENT):
        chunk = _padded(rows[start : start + _RESULTS_PER_STATEMENT])
        connection.execute(_insert_results(len(chunk)), [v for row in chunk for v in row])


_RESULTS_PER_STATEMENT = 192  # 4 values a row: under the 999 variables older sqlite builds allow


@functools.cache
def _insert_results(count: int) -> str:
    # Rows later in the statement win over earlier ones for the same new booking, as they would
    # one statement after the other.
    values = ", ".join(["(?, ?, ?, ?)"] * count)
    return (
        f"INSERT INTO results (api_root, new_booking_id, booking_id, recorded_at) VALUES {values}"
        " ON CONFLICT (api_root, new_booking_id) DO UPDATE SET booking_id = excluded.booking_id,"
        " recorded_at = excluded.recorded_at"
    )


def result_of(connection: sqlite3.Connection, api_root: str, new_booking_id: int) -> int | None:
    row = connection.execute(
        "SELECT booking_id FROM results WHERE api_root = ? AND new_booking_id = ?",
        (api_root, new_booking_id),
    ).fetchone()
    return row[0] if row is not None else None


def write_outcome_row(
    connection: sqlite3.Connection,
    entry: JournalEntry | None,
    key: Key,
    state: AttemptState,
    decider: Decider,
    new_booking_id: int | None,
    now: datetime,
    now_host: HostInstant,
) -> None:
    """Write ``state`` as the outcome of ``entry``'s attempt (or a first entry for ``key``), keeping
    its start."""
    if entry is None:
        entry = JournalEntry(
            api_root=key.api_root,
            booking_id=key.booking_id,
            state=state,
            attempt=0,
            started_at=now,
            updated_at=now,
            settle_seconds=0.0,
        )
    written = attrs.evolve(
        entry,
        state=state,
        updated_at=now,
        new_booking_id=new_booking_id,
        decided_by=decider,
        readable=True,
    )
    started = now_host if not entry.readable else None
    if entry.new_booking_id is not None:  # the result this entry recorded is replaced
        connection.execute(
            "DELETE FROM results WHERE api_root = ? AND new_booking_id = ? AND booking_id = ?",
            (key.api_root, entry.new_booking_id, key.booking_id),
        )
    row = row_of(written, started or now_host)
    if started is None:  # keep the attempt's start as it is in the row
        tail = (
            " ON CONFLICT DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,"
            " new_booking_id = excluded.new_booking_id, decided_by = excluded.decided_by"
        )
    else:
        tail = CLAIM_UPSERT
    upsert(connection, [row], tail)
    if new_booking_id is not None:
        record_results(connection, [(key.api_root, new_booking_id, key.booking_id, now.isoformat())])


def outstanding_rows(
    connection: sqlite3.Connection, api_root: str, fingerprints: list[str], unknown_terms: bool
) -> list[Row]:
    """The rows in flight or unknown of ``api_root`` with one of ``fingerprints`` (and, with
    ``unknown_terms``, those whose terms are not known)."""
    base = f"SELECT {COLUMNS} FROM attempts WHERE api_root = ? AND state IN ('in_flight', 'unknown')"
    rows: list[Row] = []
    for start in range(0, len(fingerprints), 500):
        chunk = fingerprints[start : start + 500]
        query = f"{base} AND fingerprint IN ({', '.join('?' * len(chunk))})"
        rows += connection.execute(query, (api_root, *chunk)).fetchall()
    if unknown_terms:
        rows += connection.execute(f"{base} AND fingerprint IS NULL", (api_root,)).fetchall()
    return rows


def results_of(connection: sqlite3.Connection, api_root: str, booking_ids: list[int]) -> dict[int, int]:
    """Which of ``booking_ids`` are recorded reschedules: new id -> original id."""
    found: dict[int, int] = {}
    for start in range(0, len(booking_ids), 500):
        chunk = booking_ids[start : start + 500]
        query = (
            "SELECT new_booking_id, booking_id FROM results WHERE api_root = ?"
            f" AND new_booking_id IN ({', '.join('?' * len(chunk))})"
        )
        found.update(connection.execute(query, (api_root, *chunk)).fetchall())
    return found


def every_row(connection: sqlite3.Connection, api_root: str | None) -> list[Row]:
    """Every row of ``api_root`` (all roots for None), by root and booking id."""
    if api_root is None:
        return connection.execute(f"SELECT {COLUMNS} FROM attempts ORDER BY api_root, booking_id").fetchall()
    query = f"SELECT {COLUMNS} FROM attempts WHERE api_root = ? ORDER BY booking_id"
    return connection.execute(query, (api_root,)).fetchall()


def offset_of(connection: sqlite3.Connection, api_root: str) -> int | None:
    """The server offset learned for ``api_root`` (minutes east of UTC)."""
    row = connection.execute("SELECT minutes FROM server_offsets WHERE api_root = ?", (api_root,)).fetchone()
    return int(row[0]) if row is not None else None


def forget_rows(
    connection: sqlite3.Connection, refused_before: datetime, rescheduled_before: datetime
) -> int:
    """Delete refused entries older than the first date and rescheduled ones (with their results) older
    than the second; how many entries went."""
    cursor = connection.execute(
        "DELETE FROM attempts WHERE (state = 'refused' AND updated_at < ?)"
        " OR (state = 'rescheduled' AND updated_at < ?)",
        (refused_before.isoformat(), rescheduled_before.isoformat()),
    )
    connection.execute("DELETE FROM results WHERE recorded_at < ?", (rescheduled_before.isoformat(),))
    return cursor.rowcount
