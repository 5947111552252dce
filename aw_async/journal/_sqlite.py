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
- **A claim survives its caller's cancellation**: a claim granted to a caller that stopped waiting
  for it (nothing can have been sent) is given back, recorded as refused the way an outcome is
  (:attr:`~SqliteJournal.claims_survive_cancellation`), so that it never stays in flight under this
  live process.
- **Private**: the folder is made 0700 and the files 0600.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import attrs

from ..errors import JournalError
from ._liveness import OwnerLock
from ._rules import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    FORGET_EVERY,
    AttemptState,
    Decider,
    JournalEntry,
    Key,
    Terms,
    displaced_by_user,
    may_record_verdict,
    may_renew,
    may_resolve,
)
from ._sqlite_groups import ClaimWork, Groups, Operation, OutcomeWork, Work
from ._sqlite_statements import (
    every_row,
    forget_rows,
    offset_of,
    outstanding_rows,
    result_of,
    results_of,
    write_outcome_row,
)
from ._sqlite_tables import SCHEMA_VERSION, RowReader, SchemaProblem, check_schema, iso
from ._store import Claim, Clocks, Journal
from ._writer import SqliteWriter

__all__ = ["SCHEMA_VERSION", "SqliteJournal"]

log = logging.getLogger("aw_async")

T = TypeVar("T")


class SqliteJournal(Journal):
    """A journal in a sqlite3 file: durable across crashes, shared by the processes of one host.

    Args:
        path: the database file (created, with its folder, if missing; ``~`` is the home folder).
        busy_timeout: how long to wait for another process's transaction, in seconds.
        keep_refused, keep_rescheduled: how long refused and rescheduled entries are kept.

    Close it with :meth:`aclose` (a client closes the journal it opened from a path). Use it on a
    local disk: the owners' locks of a network file system are not to be trusted.
    """

    #: A claim whose caller is gone by the time its commit is delivered is recorded as refused
    #: (:meth:`_give_back`): the guard needs no task of its own for it.
    claims_survive_cancellation = True

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
        self._rows = RowReader(self.path, self._clocks.wall, self._owner_alive)
        groups = Groups(lambda: self._lock.token, self._live, self._clocks, self._rows)
        self._writer: SqliteWriter[Work] = SqliteWriter(
            self._connect, groups.run_group, f"aw-journal {self.path.name}", self._give_back
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
            check_schema(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    def _failed(self, exc: BaseException) -> JournalError:
        if isinstance(exc, SchemaProblem):
            return JournalError(f"the journal {str(self.path)!r}: {exc}")
        what = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return JournalError(f"the journal {str(self.path)!r} failed: {type(exc).__name__}: {what}")

    async def _submit(self, work: Work) -> asyncio.Future[Any]:
        try:
            return await self._writer.submit(work)
        except (sqlite3.Error, OSError, SchemaProblem) as exc:  # the file could not be opened
            raise self._failed(exc) from exc
        except RuntimeError as exc:  # closed
            raise JournalError(f"the journal {str(self.path)!r} is closed") from exc

    async def _do(self, work: Work) -> Any:
        """Run ``work`` on the journal's thread, committed.

        Raises:
            JournalError: the database could not be opened, read or written (a full disk, a lock
                held past ``busy_timeout``, a file that is not a database, a folder that cannot be
                made).
        """
        future = self._writer.submit_nowait(work)  # open: no coroutine to await on the way
        if future is None:
            future = await self._submit(work)
        try:
            return await future
        except asyncio.CancelledError:
            # Cancelled once the result had come, before this task ran again: it is this caller's
            # to give back. (Cancelled before it came: the future is cancelled, and the writer
            # gives the result back when it comes.)
            if future.done() and not future.cancelled() and future.exception() is None:
                self._give_back(future.result())
            raise
        except (sqlite3.Error, OSError) as exc:
            raise self._failed(exc) from exc

    async def flush(self) -> None:
        await self._writer.flush()

    async def aclose(self) -> None:
        await self._writer.close()
        self._lock.close()

    def _owner_alive(self, owner: str | None, key: Key, attempt: int) -> bool:
        if owner is None:
            return False
        if owner == self._lock.token:  # this journal's: alive while this process runs that attempt
            return (key, attempt) in self._live
        return self._lock.is_alive(owner)

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
        claim: Claim = await self._do(ClaimWork(key, force, settle, server_now, terms))
        return claim

    def _give_back(self, result: object) -> None:
        """Give back a claim granted to a caller that is gone: nothing was sent, so it is refused,
        queued as any outcome is. A journal closing meanwhile cannot queue it; the attempt then
        stops being live here, and reads as unknown (reconciled before anything is sent)."""
        if isinstance(result, Claim) and result.granted and result.entry is not None:
            entry = result.entry
            if not self.record_outcome_nowait(entry, AttemptState.REFUSED):
                self._live.discard((entry.key, entry.attempt))

    async def renew(self, entry: JournalEntry, *, server_now: datetime | None = None) -> JournalEntry | None:
        def renew(connection: sqlite3.Connection) -> JournalEntry | None:
            now_host, now = self._clocks.host(), self._clocks.wall()
            current = self._rows.select(connection, [entry.key], now_host).get(entry.key)
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
                    iso(server_now),
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
            recorded: bool = await self._do(OutcomeWork(entry, state, new_booking_id, terms))
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
        if not self._writer.post_nowait(OutcomeWork(entry, state, new_booking_id, terms)):
            return False  # not open (it always is once a claim was granted)
        self._live.discard((entry.key, entry.attempt))
        self._count_outcome()
        return True

    def _count_outcome(self) -> None:
        self._outcome_count += 1
        if self._outcome_count % FORGET_EVERY == 0:  # forgetting is housekeeping: queued, not awaited
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
            entry = self._rows.select(connection, [key], now_host).get(key)
            if not may_record_verdict(entry, attempt=attempt):
                return False
            if new_booking_id is not None and result_of(connection, key.api_root, new_booking_id) not in (
                None,
                key.booking_id,
            ):
                return False  # another booking's recorded reschedule
            write_outcome_row(
                connection, entry, key, state, Decider.RECONCILIATION, new_booking_id, now, now_host
            )
            return True

        recorded: bool = await self._do(verdict)
        return recorded

    async def resolve(self, key: Key, *, rescheduled_into: int | None) -> JournalEntry | None:
        def resolve(connection: sqlite3.Connection) -> JournalEntry | None:
            now_host, now = self._clocks.host(), self._clocks.wall()
            entry = self._rows.select(connection, [key], now_host).get(key)
            if not may_resolve(entry):
                return None
            if rescheduled_into is not None:
                other = result_of(connection, key.api_root, rescheduled_into)
                if other is not None and other != key.booking_id:  # the user says otherwise: the user wins
                    displaced = Key(key.api_root, other)
                    previous = self._rows.select(connection, [displaced], now_host).get(displaced)
                    connection.execute(
                        "DELETE FROM results WHERE api_root = ? AND new_booking_id = ?",
                        (key.api_root, rescheduled_into),
                    )
                    if displaced_by_user(previous, rescheduled_into):
                        write_outcome_row(
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
            write_outcome_row(connection, entry, key, state, Decider.USER, rescheduled_into, now, now_host)
            return self._rows.select(connection, [key], now_host).get(key)

        resolved: JournalEntry | None = await self._do(resolve)
        return resolved

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
            lambda connection: self._rows.select(connection, wanted, self._clocks.host())
        )
        return found

    async def outstanding(self, api_root: str, fingerprints: Iterable[str | None]) -> list[JournalEntry]:
        wanted = set(fingerprints)
        known = sorted(f for f in wanted if f is not None)

        def outstanding(connection: sqlite3.Connection) -> list[JournalEntry]:
            now = self._clocks.host()
            rows = outstanding_rows(connection, api_root, known, None in wanted)
            return [self._rows.entry(row, now) for row in rows]

        found: list[JournalEntry] = await self._do(outstanding)
        return found

    async def results_among(self, api_root: str, booking_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(booking_ids))
        if not ids:
            return {}

        found: dict[int, int] = await self._do(lambda connection: results_of(connection, api_root, ids))
        return found

    async def entries(
        self, api_root: str | None = None, *, states: Iterable[AttemptState] | None = None
    ) -> list[JournalEntry]:
        wanted = set(states) if states is not None else None

        def entries(connection: sqlite3.Connection) -> list[JournalEntry]:
            now = self._clocks.host()
            found = (self._rows.entry(row, now) for row in every_row(connection, api_root))
            return [e for e in found if wanted is None or e.effective_state in wanted]

        found: list[JournalEntry] = await self._do(entries)
        return found

    async def server_offset(self, api_root: str) -> int | None:
        minutes: int | None = await self._do(lambda connection: offset_of(connection, api_root))
        return minutes

    async def forget_old(self, now: datetime | None = None) -> int:
        forgotten: int = await self._do(self._forget(now or self._clocks.wall()))
        return forgotten

    def _forget(self, at: datetime) -> Operation:
        refused_before, rescheduled_before = at - self.keep_refused, at - self.keep_rescheduled
        return lambda connection: forget_rows(connection, refused_before, rescheduled_before)
