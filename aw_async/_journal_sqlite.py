"""``SqliteJournal``: the journal in a sqlite3 file, durable across crashes and shared by processes.

How it keeps its promises:

- **Durable before the POST**: :meth:`claim` returns only once its transaction is committed
  (``synchronous=FULL``: on disk, not just handed to the OS).
- **Atomic across processes**: every operation runs in a ``BEGIN IMMEDIATE`` transaction, which
  takes sqlite's write lock first, so two processes claiming one booking are serialised and the
  second sees the first's claim. A busy database is waited for (``busy_timeout``), not failed.
- **Never blocking the event loop**: all disk I/O happens on one thread of the journal's own, which
  owns the connection; coroutines hand it operations and await their results.
- **Fast enough for a batch**: the thread takes every operation waiting when it starts a
  transaction and commits them together (group commit), so fifty concurrent bookings cost one
  ``fsync``, not fifty. Each caller still resumes only after the commit that holds its operation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

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
_MAX_GROUP = 512  # operations committed together at most
_STOP = object()

Operation = Callable[[sqlite3.Connection], Any]
Deliver = Callable[[object, BaseException | None], None]


def _row(entry: JournalEntry) -> tuple[object, ...]:
    return (
        entry.booking_id,
        entry.state.value,
        entry.attempted_at.isoformat(),
        entry.updated_at.isoformat(),
        entry.new_booking_id,
        entry.owner,
        entry.lease_until.isoformat() if entry.lease_until else None,
    )


def _entry(row: tuple[Any, ...] | None) -> JournalEntry | None:
    if row is None:
        return None
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
    query = f"SELECT {_COLUMNS} FROM reschedules WHERE booking_id = ?"
    return _entry(connection.execute(query, (booking_id,)).fetchone())


def _upsert(connection: sqlite3.Connection, entry: JournalEntry) -> None:
    statement = f"INSERT OR REPLACE INTO reschedules ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    connection.execute(statement, _row(entry))


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
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._opening: asyncio.Future[None] | None = None
        self._closed = False
        self._settled = 0

    def __repr__(self) -> str:
        return f"SqliteJournal({str(self.path)!r})"

    # --- the writer thread ----------------------------------------------------------------------

    def _start(self) -> None:
        ready: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=f"aw-journal {self.path.name}")
        self._thread.daemon = True  # a crashed program must not hang on it; its commits are done
        self._thread.start()
        problem = ready.get()
        if problem is not None:
            self._thread = None
            self._opening = None  # the next use tries again
            raise problem

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

    def _run(self, ready: queue.SimpleQueue[BaseException | None]) -> None:
        try:
            connection = self._connect()
        except BaseException as exc:  # reported to the opener, which raises it
            ready.put(exc)
            return
        ready.put(None)
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                group = [first]
                while len(group) < _MAX_GROUP:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        self._queue.put(_STOP)  # finish this group first, then stop
                        break
                    group.append(item)
                self._commit_group(connection, group)  # type: ignore[arg-type]
        finally:
            connection.close()

    @staticmethod
    def _commit_group(connection: sqlite3.Connection, group: list[tuple[Operation, Deliver]]) -> None:
        results: list[tuple[Deliver, object, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for operation, deliver in group:
                connection.execute("SAVEPOINT op")  # one operation's failure undoes only itself
                try:
                    results.append((deliver, operation(connection), None))
                    connection.execute("RELEASE op")
                except sqlite3.Error as exc:
                    connection.execute("ROLLBACK TO op")
                    connection.execute("RELEASE op")
                    results.append((deliver, None, exc))
            connection.execute("COMMIT")
        except sqlite3.Error as exc:  # the transaction as a whole failed: every operation did
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            results = [(deliver, None, exc) for _, deliver in group]
        for deliver, value, problem in results:  # only now: each result is committed
            deliver(value, problem)

    async def _do(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` on the journal's thread, in a committed transaction.

        Raises:
            JournalError: the database could not be opened, read or written (a full disk, a lock
                held past ``busy_timeout``, a file that is not a database).
        """
        try:
            return await self._submit(operation)
        except sqlite3.Error as exc:
            raise JournalError(f"the journal {str(self.path)!r} failed: {exc}") from exc

    async def _submit(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("this journal is closed")
        if self._opening is None:  # the first use opens the file, once, however many arrive at once
            self._opening = asyncio.ensure_future(asyncio.to_thread(self._start))
        await asyncio.shield(self._opening)  # opening the file is disk I/O too
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()

        def deliver(value: object, problem: BaseException | None) -> None:
            loop.call_soon_threadsafe(_resolve, future, value, problem)

        self._queue.put((operation, deliver))
        return await future

    async def aclose(self) -> None:
        self._closed = True
        if self._opening is not None:
            with contextlib.suppress(Exception):  # a journal that failed to open has nothing to stop
                await asyncio.shield(self._opening)
        if self._thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

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
        def operation(connection: sqlite3.Connection) -> Claim:
            now = datetime.now(UTC)
            entry = _select(connection, booking_id)
            if decide_claim(entry, now=now, force=force, after_reconcile=after_reconcile) == "refuse":
                return Claim(False, entry)
            claimed = in_flight(booking_id, owner, now, lease)
            _upsert(connection, claimed)
            return Claim(True, claimed)

        return await self._do(operation)

    async def settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        def operation(connection: sqlite3.Connection) -> None:
            now = datetime.now(UTC)
            entry = _select(connection, booking_id)
            attempted_at = entry.attempted_at if entry is not None else now
            _upsert(connection, JournalEntry(booking_id, state, attempted_at, now, new_booking_id))

        await self._do(operation)
        self._settled += 1
        if self._settled % 1024 == 0:
            await self.forget_old()

    async def entries(self) -> list[JournalEntry]:
        def operation(connection: sqlite3.Connection) -> list[JournalEntry]:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM reschedules ORDER BY booking_id").fetchall()
            return [entry for entry in map(_entry, rows) if entry is not None]

        return await self._do(operation)

    async def forget_old(self, now: datetime | None = None) -> int:
        at = now or datetime.now(UTC)

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

        return await self._do(operation)


def _resolve(future: asyncio.Future[Any], value: object, problem: BaseException | None) -> None:
    if future.cancelled():
        return  # its caller stopped waiting; the operation is committed all the same
    if problem is not None:
        future.set_exception(problem)
    else:
        future.set_result(value)
