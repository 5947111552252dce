"""The sqlite journal's tables: the schema and its version, and how entries become rows and rows
entries (:mod:`._sqlite_statements` writes and reads them; :mod:`._sqlite` runs the transitions).

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

from .._clock import HostInstant, seconds_between
from ._rules import AttemptState, Decider, JournalEntry, Key, Terms

__all__ = [
    "CLAIM_UPSERT",
    "COLUMNS",
    "NO_START",
    "OUTCOME_UPSERT",
    "SCHEMA_VERSION",
    "SET_ALL",
    "Row",
    "RowReader",
    "SchemaProblem",
    "check_schema",
    "iso",
    "outcome_row",
    "row_of",
    "terms_columns",
]

log = logging.getLogger("aw_async")

Row = tuple[Any, ...]

SCHEMA_VERSION = 1
# The index attempts_unsettled holds the outstanding entries (in flight or unknown); its name is
# schema version 1's, kept: renaming an index is a migration, not a rename.
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
ROWS_PER_STATEMENT = 64  # 15 values a row: under the 999 variables older sqlite builds allow
SET_ALL = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in COLUMNS.split(",")[2:])
CLAIM_UPSERT = f" ON CONFLICT DO UPDATE SET {SET_ALL}"  # a granted claim writes its whole entry
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


#: Each state's and decider's text (an enum's ``.value`` is a descriptor, dear on every row).
_STATE_TEXT = {state: state.value for state in AttemptState}
_DECIDER_TEXT: dict[Decider | None, str | None] = {None: None, **{d: d.value for d in Decider}}
_TERMS_COLUMNS: dict[Terms, tuple[str, str]] = {}
_TERMS_REMEMBERED = 1024  # at most; then forgotten all at once


def terms_columns(terms: Terms | None) -> tuple[str | None, str | None]:
    """The ``terms`` and ``fingerprint`` columns of ``terms``. Remembered for a while: a booking's
    claim and its outcome (or a run of twins) write the same terms."""
    if terms is None:
        return None, None
    columns = _TERMS_COLUMNS.get(terms)
    if columns is None:
        text = terms.to_text()
        columns = (text, Terms.fingerprint_of(text))
        if len(_TERMS_COLUMNS) >= _TERMS_REMEMBERED:
            _TERMS_COLUMNS.clear()
        _TERMS_COLUMNS[terms] = columns
    return columns


def row_of(entry: JournalEntry, started: HostInstant, at: str | None = None) -> Row:
    """The row of ``entry``, its attempt started at ``started`` on the host's clock; begun and
    updated ``at`` when given (a granted claim's, :func:`~._rules.claimed`: one text for the whole
    run of claims, not two ``isoformat`` calls a row)."""
    text, fingerprint = terms_columns(entry.terms)
    return (
        entry.api_root,
        entry.booking_id,
        _STATE_TEXT[entry.state],
        entry.attempt,
        at or entry.started_at.isoformat(),
        started.boot,
        started.seconds,
        at or entry.updated_at.isoformat(),
        entry.settle_seconds,
        entry.owner,
        iso(entry.server_started_at),
        text,
        fingerprint,
        entry.new_booking_id,
        _DECIDER_TEXT[entry.decided_by],
    )


def outcome_row(
    entry: JournalEntry, state: AttemptState, now: str, new_booking_id: int | None, terms: Terms | None
) -> Row:
    """:func:`row_of` ``entry`` with ``state``, its POST's outcome, at ``now`` (its text), with ``terms``
    (or the entry's, for None), for :data:`OUTCOME_UPSERT` (which keeps the attempt's start)."""
    text, fingerprint = terms_columns(terms if terms is not None else entry.terms)
    return (
        entry.api_root,
        entry.booking_id,
        _STATE_TEXT[state],
        entry.attempt,
        entry.started_at.isoformat(),
        NO_START.boot,
        NO_START.seconds,
        now,
        entry.settle_seconds,
        entry.owner,
        iso(entry.server_started_at),
        text,
        fingerprint,
        new_booking_id,
        _DECIDER_TEXT[Decider.ANSWER],
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
