"""``SqliteJournal``: the journal in a sqlite3 file, durable across crashes and shared by the processes
of one host.

How it keeps the rules (:mod:`._rules`):

- **Durable before the POST**: a claim returns only once its transaction is committed
  (``synchronous=FULL``: on disk, not just handed to the OS).
- **Atomic across processes**: every transaction is ``BEGIN IMMEDIATE``, which takes sqlite's write
  lock first, so each transition reads and writes its entry with no other process in between. A busy
  database is waited for (``busy_timeout``), not failed.
- **Liveness from the kernel**: an owner is alive while it holds its lock on a byte of
  ``<file>.owners`` (:mod:`._liveness`); an attempt's age is measured on the host's clock that never
  steps (:mod:`aw_async._clock`), falling back to the wall clock only across a reboot.
- **Never blocking the event loop**: all disk I/O happens on the journal's own thread
  (:mod:`._writer`), with group commit. Each statement gives the GIL back and getting it again from a
  busy event loop can take a switch interval, so a run of claims is read in one statement and written
  in one, and a run of outcomes is written in one (a multi-row compare-and-set), however many there
  are. An outcome is queued, not awaited: it is committed with the next group (and before
  :meth:`~SqliteJournal.flush` or :meth:`~SqliteJournal.aclose` returns). If the process dies first,
  the attempt is still in flight under a dead owner, which the next attempt reads as unknown and
  reconciles: late, never wrong.
- **Private**: the folder is made 0700 and the files 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs

from .._clock import HostInstant, seconds_between
from ..errors import JournalError
from ._liveness import OwnerLock
from ._rules import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    AttemptState,
    Decider,
    JournalEntry,
    Key,
    Terms,
    claimed,
    displaced_by_user,
    may_claim,
    may_record_verdict,
    may_renew,
    may_resolve,
)
from ._store import Claim, Clocks, Journal
from ._writer import Deliver, SqliteWriter

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]

log = logging.getLogger("aw_async")

T = TypeVar("T")

SCHEMA_VERSION = 1
_SCHEMA = """
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
_COLUMNS = (
    "api_root, booking_id, state, attempt, started_at, started_boot, started_elapsed, updated_at,"
    " settle_seconds, owner, server_started_at, terms, fingerprint, new_booking_id, decided_by"
)
_WIDTH = len(_COLUMNS.split(","))
_ROWS_PER_STATEMENT = 60  # 15 values a row: under the 999 variables older sqlite builds allow
_SET_ALL = ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _COLUMNS.split(",")[2:])
# An outcome: a compare-and-set on the owner's attempt, still in flight (_rules.may_record_outcome).
# The attempt's start stays as it was; the terms are kept when the outcome brings none.
_OUTCOME_UPSERT = (
    " ON CONFLICT (api_root, booking_id) DO UPDATE SET state = excluded.state,"
    " updated_at = excluded.updated_at, new_booking_id = excluded.new_booking_id,"
    " decided_by = excluded.decided_by, terms = coalesce(excluded.terms, attempts.terms),"
    " fingerprint = coalesce(excluded.fingerprint, attempts.fingerprint)"
    " WHERE attempts.attempt = excluded.attempt AND attempts.state = 'in_flight'"
    " AND attempts.owner = excluded.owner RETURNING api_root, booking_id"
)
_NO_START = HostInstant("", 0.0)  # an outcome does not move its attempt's start
_LEGACY = (
    "this journal was written by an earlier aw-async, which keyed entries by booking id alone; it "
    "cannot tell which server they belong to. Keep it aside (rename it) and start a new journal"
)

Row = tuple[Any, ...]


@attrs.frozen
class _ClaimWork:
    key: Key
    force: bool
    settle: float
    server_now: datetime | None
    terms: Terms | None


@attrs.frozen
class _OutcomeWork:
    entry: JournalEntry
    state: AttemptState
    new_booking_id: int | None
    terms: Terms | None


_Operation = Callable[[sqlite3.Connection], Any]
_Work = _ClaimWork | _OutcomeWork | _Operation


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class SqliteJournal(Journal):
    """A journal in a sqlite3 file: durable across crashes, shared by the processes of one host.

    Args:
        path: the database file (created, with its folder, if missing; ``~`` is the home folder).
        busy_timeout: how long to wait for another process's transaction, in seconds.
        keep_refused, keep_rescheduled: how long settled entries are kept.

    Close it with :meth:`aclose` (a client closes the journal it opened from a path). Use it on a
    local disk: the owners' locks of a network file system are not to be trusted.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
        clocks: Clocks | None = None,
    ) -> None:
        super().__init__(keep_refused=keep_refused, keep_rescheduled=keep_rescheduled)
        self.path = Path(path).expanduser()
        self._busy_timeout = busy_timeout
        self._clocks = clocks or Clocks()
        self._lock = OwnerLock(self.path.with_name(self.path.name + ".owners"))
        self._live: set[tuple[Key, int]] = set()  # this journal's attempts under way
        self._writer: SqliteWriter[_Work] = SqliteWriter(
            self._connect, self._run_group, f"aw-journal {self.path.name}"
        )
        self._outcome_count = 0

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    @property
    def owner(self) -> str:
        """This journal's owner token (its lock's): the attempts it claims are made in its name."""
        return self._lock.token

    # --- the file ---------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        """Open the file (on the writer's thread): folder 0700, files 0600, the schema checked."""
        folder = self.path.parent
        if not folder.exists():
            folder.mkdir(mode=0o700, parents=True)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))  # sqlite's own files follow its mode
        self._lock.token  # noqa: B018 - the owner's lock is taken before anything is claimed
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        try:
            # Two processes opening a new file at once race to switch it to WAL; sqlite answers the
            # loser "locked" at once, without its busy handler: try again, briefly.
            deadline = time.monotonic() + self._busy_timeout
            while True:
                try:
                    connection.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.02)  # on the journal's own thread, never the event loop's
            connection.execute("PRAGMA synchronous=FULL")
            self._check_schema(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _check_schema(self, connection: sqlite3.Connection) -> None:
        """Create the schema on first use, under the write lock; refuse one this version cannot read."""
        connection.execute("BEGIN IMMEDIATE")
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            if version == 0:
                legacy = connection.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'reschedules'"
                ).fetchone()
                if legacy is not None:
                    raise _SchemaProblem(_LEGACY)
                for statement in filter(str.strip, _SCHEMA.split(";")):  # executescript would commit
                    connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                raise _SchemaProblem(
                    f"this journal has schema version {version}, newer than this aw-async knows "
                    f"({SCHEMA_VERSION}): upgrade aw-async to use it"
                )
            connection.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            raise

    def _failed(self, exc: BaseException) -> JournalError:
        if isinstance(exc, _SchemaProblem):
            return JournalError(f"the journal {str(self.path)!r}: {exc}")
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return JournalError(f"the journal {str(self.path)!r} failed: {type(exc).__name__}: {what}")

    async def _submit(self, work: _Work) -> asyncio.Future[Any]:
        try:
            return await self._writer.submit(work)
        except (sqlite3.Error, OSError, _SchemaProblem) as exc:  # the file could not be opened
            raise self._failed(exc) from exc
        except RuntimeError as exc:  # closed
            raise JournalError(f"the journal {str(self.path)!r} is closed") from exc

    async def _do(self, work: _Work) -> Any:
        """Run ``work`` on the journal's thread, committed.

        Raises:
            JournalError: the database could not be opened, read or written (a full disk, a lock
                held past ``busy_timeout``, a file that is not a database, a folder that cannot be
                made).
        """
        future = await self._submit(work)
        try:
            return await future
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.close()
        self._lock.close()

    # --- rows ----------------------------------------------------------------------------------

    def _row(self, entry: JournalEntry, started: HostInstant) -> Row:
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
            _iso(entry.server_started_at),
            terms.to_text() if terms is not None else None,
            terms.fingerprint if terms is not None else None,
            entry.new_booking_id,
            entry.decided_by.value if entry.decided_by is not None else None,
        )

    def _entry(self, row: Row, now: HostInstant) -> JournalEntry:
        """The entry of a row, with its owner's liveness and its age; a row this version cannot read
        is an unreadable entry (it counts as unknown, never as free)."""
        try:
            return self._parse(row, now)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError):
            log.warning("the journal %s holds a row it cannot read, for booking %r", self.path, row[1])
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
            age = (self._clocks.wall() - started).total_seconds()
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

    def _owner_alive(self, owner: str | None, key: Key, attempt: int) -> bool:
        if owner is None:
            return False
        if owner == self._lock.token:  # this journal's: alive while this process runs that attempt
            return (key, attempt) in self._live
        return self._lock.is_alive(owner)

    def _select(
        self, connection: sqlite3.Connection, keys: list[Key], now: HostInstant
    ) -> dict[Key, JournalEntry]:
        found: dict[Key, JournalEntry] = {}
        for start in range(0, len(keys), 400):
            chunk = keys[start : start + 400]
            pairs = ", ".join(["(?, ?)"] * len(chunk))
            values = [v for key in chunk for v in (key.api_root, key.booking_id)]
            query = f"SELECT {_COLUMNS} FROM attempts WHERE (api_root, booking_id) IN (VALUES {pairs})"
            for row in connection.execute(query, values):
                found[Key(row[0], row[1])] = self._entry(row, now)
        return found

    @staticmethod
    def _upsert(connection: sqlite3.Connection, rows: list[Row], tail: str) -> list[Row]:
        returned: list[Row] = []
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            values = ", ".join(["(" + ", ".join("?" * _WIDTH) + ")"] * len(chunk))
            cursor = connection.execute(
                f"INSERT INTO attempts ({_COLUMNS}) VALUES {values}{tail}", [v for row in chunk for v in row]
            )
            returned += cursor.fetchall()
        return returned

    @staticmethod
    def _record_results(connection: sqlite3.Connection, rows: list[tuple[str, int, int, str]]) -> None:
        """Which booking each new booking is the reschedule of (the latest word wins)."""
        if rows:
            connection.executemany(
                "INSERT INTO results (api_root, new_booking_id, booking_id, recorded_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (api_root, new_booking_id) DO UPDATE SET booking_id = excluded.booking_id,"
                " recorded_at = excluded.recorded_at",
                rows,
            )

    # --- the writer's groups ------------------------------------------------------------------

    def _run_group(self, connection: sqlite3.Connection, group: list[tuple[_Work, Deliver]]) -> list[Any]:
        """A group's work in queue order: runs of claims, and runs of outcomes, written together."""
        results: list[Any] = []
        run: list[tuple[_Work, Deliver]] = []
        for item in group:
            if run and type(item[0]) is not type(run[0][0]):
                results += self._run(connection, run)
                run = []
            run.append(item)
        if run:
            results += self._run(connection, run)
        return results

    def _run(self, connection: sqlite3.Connection, run: list[tuple[_Work, Deliver]]) -> list[Any]:
        first = run[0][0]
        if isinstance(first, _ClaimWork):
            return self._claims(connection, run)  # type: ignore[arg-type]
        if isinstance(first, _OutcomeWork):
            return self._outcomes(connection, run)  # type: ignore[arg-type]
        return [(deliver, work(connection), None) for work, deliver in run]  # type: ignore[operator]

    def _claims(self, connection: sqlite3.Connection, run: list[tuple[_ClaimWork, Deliver]]) -> list[Any]:
        now_host, now = self._clocks.host(), self._clocks.wall()
        current: dict[Key, JournalEntry | None] = dict(
            self._select(connection, list({work.key: None for work, _ in run}), now_host)
        )
        granted: dict[Key, JournalEntry] = {}
        results = []
        for work, deliver in run:
            entry = current.get(work.key)
            if may_claim(entry, force=work.force):
                entry = claimed(
                    entry,
                    work.key,
                    owner=self._lock.token,
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
        rows = [self._row(entry, now_host) for entry in granted.values()]
        self._upsert(connection, rows, f" ON CONFLICT DO UPDATE SET {_SET_ALL}")
        return results

    def _outcomes(self, connection: sqlite3.Connection, run: list[tuple[_OutcomeWork, Deliver]]) -> list[Any]:
        now = self._clocks.wall()
        latest: dict[Key, _OutcomeWork] = {work.entry.key: work for work, _ in run}  # one per key: the last
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
            rows.append(self._row(settled, _NO_START))
            if work.new_booking_id is not None:
                results_rows.append((entry.api_root, work.new_booking_id, entry.booking_id, now.isoformat()))
        written = {Key(r[0], r[1]) for r in self._upsert(connection, rows, _OUTCOME_UPSERT)}
        self._record_results(connection, [r for r in results_rows if Key(r[0], r[2]) in written])
        outcomes = []
        for work, deliver in run:
            ok = work.entry.key in written and latest[work.entry.key] is work
            if not ok and deliver is None:
                log.error(
                    "the journal did not record the outcome of %s: no longer its owner's", work.entry.key
                )
            outcomes.append((deliver, ok, None))
        return outcomes

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
        claim: Claim = await self._do(_ClaimWork(key, force, settle, server_now, terms))
        return claim

    async def renew(self, entry: JournalEntry, *, server_now: datetime | None = None) -> JournalEntry | None:
        def renew(connection: sqlite3.Connection) -> JournalEntry | None:
            now_host, now = self._clocks.host(), self._clocks.wall()
            current = self._select(connection, [entry.key], now_host).get(entry.key)
            if not may_renew(current, attempt=entry.attempt, owner=self._lock.token):
                return None
            assert current is not None
            renewed = attrs.evolve(
                current, started_at=now, updated_at=now, server_started_at=server_now, age=0.0
            )
            connection.execute(
                "UPDATE attempts SET started_at = ?, started_boot = ?, started_elapsed = ?, updated_at = ?,"
                " server_started_at = ? WHERE api_root = ? AND booking_id = ?",
                (
                    now.isoformat(),
                    now_host.boot,
                    now_host.seconds,
                    now.isoformat(),
                    _iso(server_now),
                    entry.api_root,
                    entry.booking_id,
                ),
            )
            return renewed

        renewed: JournalEntry | None = await self._do(renew)
        return renewed

    async def record_outcome(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        try:
            recorded: bool = await self._do(_OutcomeWork(entry, state, new_booking_id, terms))
        finally:
            self._live.discard((entry.key, entry.attempt))
        self._count_outcome()
        return recorded

    def record_outcome_nowait(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        # Queued before the attempt stops being live: anything this process asks next is queued
        # after it, so it sees the outcome (the queue keeps its order).
        if not self._writer.post_nowait(_OutcomeWork(entry, state, new_booking_id, terms)):
            return False  # not open (it always is once a claim was granted)
        self._live.discard((entry.key, entry.attempt))
        self._count_outcome()
        return True

    def _count_outcome(self) -> None:
        self._outcome_count += 1
        if self._outcome_count % 1024 == 0:  # forgetting is housekeeping: queued, not awaited
            self._writer.post_nowait(self._forget(self._clocks.wall()))

    async def record_verdict(
        self,
        key: Key,
        attempt: int,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
    ) -> bool:
        def verdict(connection: sqlite3.Connection) -> bool:
            now_host, now = self._clocks.host(), self._clocks.wall()
            entry = self._select(connection, [key], now_host).get(key)
            if not may_record_verdict(entry, attempt=attempt):
                return False
            if new_booking_id is not None and self._result_of(
                connection, key.api_root, new_booking_id
            ) not in (
                None,
                key.booking_id,
            ):
                return False  # another booking's recorded reschedule
            self._settle(connection, entry, key, state, Decider.RECONCILIATION, new_booking_id, now, now_host)
            return True

        recorded: bool = await self._do(verdict)
        return recorded

    async def resolve(self, key: Key, *, rescheduled_into: int | None) -> JournalEntry | None:
        def resolve(connection: sqlite3.Connection) -> JournalEntry | None:
            now_host, now = self._clocks.host(), self._clocks.wall()
            entry = self._select(connection, [key], now_host).get(key)
            if not may_resolve(entry):
                return None
            if rescheduled_into is not None:
                other = self._result_of(connection, key.api_root, rescheduled_into)
                if other is not None and other != key.booking_id:  # the user says otherwise: the user wins
                    displaced = Key(key.api_root, other)
                    previous = self._select(connection, [displaced], now_host).get(displaced)
                    connection.execute(
                        "DELETE FROM results WHERE api_root = ? AND new_booking_id = ?",
                        (key.api_root, rescheduled_into),
                    )
                    if displaced_by_user(previous, rescheduled_into):
                        self._settle(
                            connection,
                            previous,
                            displaced,
                            AttemptState.UNKNOWN,
                            Decider.USER,
                            None,
                            now,
                            now_host,
                        )
            state = AttemptState.RESCHEDULED if rescheduled_into is not None else AttemptState.REFUSED
            self._settle(connection, entry, key, state, Decider.USER, rescheduled_into, now, now_host)
            return self._select(connection, [key], now_host).get(key)

        resolved: JournalEntry | None = await self._do(resolve)
        return resolved

    def _settle(
        self,
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
        row = self._row(settled, started or now_host)
        if started is None:  # keep the attempt's start as it is in the row
            tail = (
                " ON CONFLICT DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at,"
                " new_booking_id = excluded.new_booking_id, decided_by = excluded.decided_by"
            )
        else:
            tail = f" ON CONFLICT DO UPDATE SET {_SET_ALL}"
        self._upsert(connection, [row], tail)
        if new_booking_id is not None:
            self._record_results(
                connection, [(key.api_root, new_booking_id, key.booking_id, now.isoformat())]
            )

    @staticmethod
    def _result_of(connection: sqlite3.Connection, api_root: str, new_booking_id: int) -> int | None:
        row = connection.execute(
            "SELECT booking_id FROM results WHERE api_root = ? AND new_booking_id = ?",
            (api_root, new_booking_id),
        ).fetchone()
        return row[0] if row is not None else None

    async def learn_terms(self, key: Key, attempt: int, terms: Terms) -> None:
        statement = (
            "UPDATE attempts SET terms = ?, fingerprint = ?"
            " WHERE api_root = ? AND booking_id = ? AND attempt = ?"
        )
        parameters = (terms.to_text(), terms.fingerprint, key.api_root, key.booking_id, attempt)
        await self._do(lambda connection: connection.execute(statement, parameters).rowcount)

    async def learn_server_offset(self, api_root: str, minutes: int) -> None:
        statement = (
            "INSERT INTO server_offsets (api_root, minutes, learned_at) VALUES (?, ?, ?)"
            " ON CONFLICT (api_root) DO UPDATE SET minutes = excluded.minutes,"
            " learned_at = excluded.learned_at"
        )
        parameters = (api_root, minutes, self._clocks.wall().isoformat())
        await self._do(lambda connection: connection.execute(statement, parameters).rowcount)

    # --- reads ------------------------------------------------------------------------------------

    async def get_many(self, keys: Iterable[Key]) -> dict[Key, JournalEntry]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        found: dict[Key, JournalEntry] = await self._do(
            lambda connection: self._select(connection, wanted, self._clocks.host())
        )
        return found

    async def unsettled(self, api_root: str, fingerprints: Iterable[str | None]) -> list[JournalEntry]:
        wanted = set(fingerprints)
        known = sorted(f for f in wanted if f is not None)

        def unsettled(connection: sqlite3.Connection) -> list[JournalEntry]:
            now = self._clocks.host()
            base = f"SELECT {_COLUMNS} FROM attempts WHERE api_root = ? AND state IN ('in_flight', 'unknown')"
            rows: list[Row] = []
            for start in range(0, len(known), 500):
                chunk = known[start : start + 500]
                query = f"{base} AND fingerprint IN ({', '.join('?' * len(chunk))})"
                rows += connection.execute(query, (api_root, *chunk)).fetchall()
            if None in wanted:
                rows += connection.execute(f"{base} AND fingerprint IS NULL", (api_root,)).fetchall()
            return [self._entry(row, now) for row in rows]

        found: list[JournalEntry] = await self._do(unsettled)
        return found

    async def results_among(self, api_root: str, booking_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(booking_ids))
        if not ids:
            return {}

        def results(connection: sqlite3.Connection) -> dict[int, int]:
            found: dict[int, int] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = (
                    "SELECT new_booking_id, booking_id FROM results WHERE api_root = ?"
                    f" AND new_booking_id IN ({', '.join('?' * len(chunk))})"
                )
                found.update(connection.execute(query, (api_root, *chunk)).fetchall())
            return found

        found: dict[int, int] = await self._do(results)
        return found

    async def entries(
        self, api_root: str | None = None, *, states: Iterable[AttemptState] | None = None
    ) -> list[JournalEntry]:
        wanted = set(states) if states is not None else None

        def entries(connection: sqlite3.Connection) -> list[JournalEntry]:
            now = self._clocks.host()
            if api_root is None:
                rows = connection.execute(f"SELECT {_COLUMNS} FROM attempts ORDER BY api_root, booking_id")
            else:
                rows = connection.execute(
                    f"SELECT {_COLUMNS} FROM attempts WHERE api_root = ? ORDER BY booking_id", (api_root,)
                )
            found = (self._entry(row, now) for row in rows)
            return [e for e in found if wanted is None or e.effective_state in wanted]

        found: list[JournalEntry] = await self._do(entries)
        return found

    async def server_offset(self, api_root: str) -> int | None:
        def offset(connection: sqlite3.Connection) -> int | None:
            row = connection.execute(
                "SELECT minutes FROM server_offsets WHERE api_root = ?", (api_root,)
            ).fetchone()
            return int(row[0]) if row is not None else None

        minutes: int | None = await self._do(offset)
        return minutes

    async def forget_old(self, now: datetime | None = None) -> int:
        forgotten: int = await self._do(self._forget(now or self._clocks.wall()))
        return forgotten

    def _forget(self, at: datetime) -> _Operation:
        refused_before = (at - self.keep_refused).isoformat()
        rescheduled_before = (at - self.keep_rescheduled).isoformat()

        def forget(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "DELETE FROM attempts WHERE (state = 'refused' AND updated_at < ?)"
                " OR (state = 'rescheduled' AND updated_at < ?)",
                (refused_before, rescheduled_before),
            )
            connection.execute("DELETE FROM results WHERE recorded_at < ?", (rescheduled_before,))
            return cursor.rowcount

        return forget


class _SchemaProblem(Exception):
    """The file holds a journal this version must not use (a legacy or a newer schema)."""
