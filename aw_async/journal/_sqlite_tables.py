"""The sqlite journal's tables: the schema and its version, and how entries become rows and rows
entries (:mod:`._sqlite` runs the transitions on them).

``attempts`` holds each key's last attempt; ``results`` which booking each new booking is the
reschedule of (so that one booking is never named for two, and ``passed_bookings`` can leave
reschedules out); ``server_offsets`` the zone offset learned for each API root. A row this version
cannot read becomes an unreadable entry, which counts as unknown, never as free.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs

from .._clock import HostInstant, seconds_between
from ._rules import AttemptState, Decider, JournalEntry, Key, Terms

__all__ = [
    "COLUMNS",
    "NO_START",
    "OUTCOME_UPSERT",
    "SCHEMA_VERSION",
    "SET_ALL",
    "Row",
    "RowReader",
    "SchemaProblem",
    "check_schema",
    "every_row",
    "forget_rows",
    "iso",
    "offset_of",
    "record_results",
    "result_of",
    "results_of",
    "row_of",
    "settle_row",
    "unsettled_rows",
    "upsert",
]

log = logging.getLogger("aw_async")

Row = tuple[Any, ...]

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE attempts (
    api_root          TEXT    NOT NULL,
    booking_id        INTEGER NOT NULL,
    state             TEXT    NOT NULL,
    attempt           INTEGER NOT NULL,
    started_at        TEXT    NOT NULL,
    started_boot      TEXT    NOT NULL,
    started_elapsed   REAL    NOT NULL,
    updated_at        TEXT    NOT NULL,
    settle_seconds    REAL    NOT NULL,
    owner             TEXT,
    server_started_at TEXT,
    terms             TEXT,
    fingerprint       TEXT,
    new_booking_id    INTEGER,
    decided_by        TEXT,
    PRIMARY KEY (api_root, booking_id)
);
CREATE INDEX attempts_unsettled ON attempts (api_root, fingerprint) WHERE state IN ('in_flight', 'unknown');
CREATE INDEX attempts_updated ON attempts (updated_at) WHERE state IN ('refused', 'rescheduled');
CREATE TABLE results (
    api_root       TEXT    NOT NULL,
    new_booking_id INTEGER NOT NULL,
    booking_id     INTEGER NOT NULL,
    recorded_at    TEXT    NOT NULL,
    PRIMARY KEY (api_root, new_booking_id)
);
CREATE TABLE server_offsets (
    api_root   TEXT    PRIMARY KEY,
    minutes    INTEGER NOT NULL,
    learned_at TEXT    NOT NULL
);
"""
COLUMNS = (
    "api_root, booking_id, state, attempt, started_at, started_boot, started_elapsed, updated_at,"
    " settle_seconds, owner, server_started_at, terms, fingerprint, new_booking_id, decided_by"
)
WIDTH = len(COLUMNS.split(","))
ROWS_PER_STATEMENT = 60  # 15 values a row: under the 999 variables older sqlite builds allow
SET_ALL = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(",")[2:])
# An outcome: a compare-and-set on the owner's attempt, still in flight (_rules.may_record_outcome).
# The attempt's start stays as it was; the terms are kept when the outcome brings none.
OUTCOME_UPSERT = (
    " ON CONFLICT (api_root, booking_id) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at, new_booking_id = excluded.new_booking_id,"
    " decided_by = excluded.decided_by, terms = coalesce(excluded.terms, attempts.terms),"
    " fingerprint = coalesce(excluded.fingerprint, attempts.fingerprint)"
    " WHERE attempts.attempt = excluded.attempt AND attempts.state = 'in_flight'"
    " AND attempts.owner = excluded.owner RETURNING api_root, booking_id"
)
NO_START = HostInstant("", 0.0)  # an outcome does not move its attempt's start
LEGACY = (
    "this journal was written by an earlier aw-async, which keyed entries by booking id alone; it "
    "cannot tell which server they belong to. Keep it aside (rename it) and start a new journal"
)


class SchemaProblem(Exception):
    """The file holds a journal this version must not use (a legacy or a newer schema)."""


def check_schema(connection: sqlite3.Connection) -> None:
    """Create the schema on first use, under the write lock; refuse one this version cannot read."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        if version == 0:
            legacy = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reschedules'"
            ).fetchone()
            if legacy is not None:
                raise SchemaProblem(LEGACY)
            for statement in filter(str.strip, SCHEMA.split(";")):  # executescript would commit
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        elif version > SCHEMA_VERSION:
            raise SchemaProblem(
                f"this journal has schema version {version}, newer than this aw-async knows "
                f"({SCHEMA_VERSION}): upgrade aw-async to use it"
            )
        connection.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def row_of(entry: JournalEntry, started: HostInstant) -> Row:
    """The row of ``entry``, its attempt started at ``started`` on the host's clock."""
    terms = entry.terms
    return (
        entry.api_root,
        entry.booking_id,
        entry.state.value,
        entry.attempt,
        entry.started_at.isoformat(),
        started.boot,
        started.seconds,
        entry.updated_at.isoformat(),
        entry.settle_seconds,
        entry.owner,
        iso(entry.server_started_at),
        terms.to_text() if terms is not None else None,
        terms.fingerprint if terms is not None else None,
        entry.new_booking_id,
        entry.decided_by.value if entry.decided_by is not None else None,
    )


class RowReader:
    """Entries from rows, with their owner's liveness and their age.

    Args:
        where: the journal's file, for a warning about a row it cannot read.
        wall: the wall clock (an age across a reboot is the wall clock's).
        owner_alive: whether the owner of an attempt in flight lives (owner, key, attempt).
    """

    def __init__(
        self, where: object, wall: Callable[[], datetime], owner_alive: Callable[[str | None, Key, int], bool]
    ) -> None:
        self._where = where
        self._wall = wall
        self._owner_alive = owner_alive

    def entry(self, row: Row, now: HostInstant) -> JournalEntry:
        """The entry of a row; a row this version cannot read is an unreadable entry."""
        try:
            return self._parse(row, now)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            log.warning("the journal %s holds a row it cannot read, for booking %r", self._where, row[1])
            epoch = datetime(1970, 1, 1, tzinfo=UTC)
            attempt = row[3] if isinstance(row[3], int) else -1
            return JournalEntry(
                api_root=str(row[0]),
                booking_id=row[1] if isinstance(row[1], int) else -1,
                state=AttemptState.UNKNOWN,
                attempt=attempt,
                started_at=epoch,
                updated_at=epoch,
                settle_seconds=0.0,
                age=0.0,
                readable=False,
            )

    def _parse(self, row: Row, now: HostInstant) -> JournalEntry:
        (api_root, booking_id, state, attempt, started_at, boot, elapsed, updated_at, settle, owner,
         server_started_at, terms, _fingerprint, new_booking_id, decided_by) = row  # fmt: skip
        if not isinstance(booking_id, int) or not isinstance(attempt, int):
            raise TypeError("not an integer")
        started = datetime.fromisoformat(started_at)
        state = AttemptState(state)
        age = seconds_between(HostInstant(boot, float(elapsed)), now)
        if age is None:  # rebooted since: only the wall clock can tell
            age = (self._wall() - started).total_seconds()
        alive = None
        if state is AttemptState.IN_FLIGHT:
            alive = self._owner_alive(owner, Key(api_root, booking_id), attempt)
        return JournalEntry(
            api_root=api_root,
            booking_id=booking_id,
            state=state,
            attempt=attempt,
            started_at=started,
            updated_at=datetime.fromisoformat(updated_at),
            settle_seconds=float(settle),
            age=max(age, 0.0),
            owner=owner,
            owner_alive=alive,
            server_started_at=datetime.fromisoformat(server_started_at) if server_started_at else None,
            terms=Terms.from_text(terms) if terms is not None else None,
            new_booking_id=new_booking_id,
            decided_by=Decider(decided_by) if decided_by is not None else None,
        )

    def select(
        self, connection: sqlite3.Connection, keys: list[Key], now: HostInstant
    ) -> dict[Key, JournalEntry]:
        """The entries of ``keys`` (those the table holds)."""
        found: dict[Key, JournalEntry] = {}
        by_root: dict[str, list[int]] = {}
        for key in keys:
            by_root.setdefault(key.api_root, []).append(key.booking_id)
        for api_root, ids in by_root.items():
            for start in range(0, len(ids), _MOST_IDS):
                chunk = ids[start : start + _MOST_IDS]
                size = _bucket(len(chunk))
                chunk += [chunk[-1]] * (size - len(chunk))  # repeated ids change nothing in an IN list
                for row in connection.execute(_select_ids(size), [api_root, *chunk]):
                    found[Key(row[0], row[1])] = self.entry(row, now)
        return found


#: Ids looked up in one statement, at most. Their number is rounded up to a power of two, so that
#: a handful of statement texts serve every size and stay in the connection's statement cache.
_MOST_IDS = 256


def _bucket(count: int) -> int:
    return 1 << (count - 1).bit_length()


@functools.cache
def _select_ids(count: int) -> str:
    # ``api_root = ? AND booking_id IN (...)`` is a search of the primary key; the row-value form
    # ``(api_root, booking_id) IN (VALUES ...)`` is planned as a scan of the whole table, whose
    # cost grows with every booking the journal keeps (a test holds the plan).
    marks = ", ".join("?" * count)
    return f"SELECT {COLUMNS} FROM attempts WHERE api_root = ? AND booking_id IN ({marks})"


def upsert(connection: sqlite3.Connection, rows: list[Row], tail: str) -> list[Row]:
    """Insert ``rows``, a chunk a statement, with ``tail`` (an ``ON CONFLICT ...``); what it returns."""
    returned: list[Row] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[start : start + ROWS_PER_STATEMENT]
        values = ", ".join(["(" + ", ".join("?" * WIDTH) + ")"] * len(chunk))
        cursor = connection.execute(
            f"INSERT INTO attempts ({COLUMNS}) VALUES {values}{tail}", [v for row in chunk for v in row]
        )
        returned += cursor.fetchall()
    return returned


def record_results(connection: sqlite3.Connection, rows: list[tuple[str, int, int, str]]) -> None:
    """Which booking each new booking is the reschedule of (the latest word wins)."""
    if rows:
        connection.executemany(
            "INSERT INTO results (api_root, new_booking_id, booking_id, recorded_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (api_root, new_booking_id) DO UPDATE SET booking_id = excluded.booking_id,"
            " recorded_at = excluded.recorded_at",
            rows,
        )


def result_of(connection: sqlite3.Connection, api_root: str, new_booking_id: int) -> int | None:
    row = connection.execute(
        "SELECT booking_id FROM results WHERE api_root = ? AND new_booking_id = ?",
        (api_root, new_booking_id),
    ).fetchone()
    return row[0] if row is not None else None


def settle_row(
    connection: sqlite3.Connection,
    entry: JournalEntry | None,
    key: Key,
    state: AttemptState,
    decider: Decider,
    new_booking_id: int | None,
    now: datetime,
    now_host: HostInstant,
) -> None:
    """Write a settled state over ``entry`` (or a first entry for ``key``), keeping its start."""
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
    settled = attrs.evolve(
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
    row = row_of(settled, started or now_host)
    if started is None:  # keep the attempt's start as it is in the row
        tail = (
            " ON CONFLICT DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,"
            " new_booking_id = excluded.new_booking_id, decided_by = excluded.decided_by"
        )
    else:
        tail = f" ON CONFLICT DO UPDATE SET {SET_ALL}"
    upsert(connection, [row], tail)
    if new_booking_id is not None:
        record_results(connection, [(key.api_root, new_booking_id, key.booking_id, now.isoformat())])


def unsettled_rows(
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
