"""``PostgresJournal``: the journal in a PostgreSQL database, shared by every process on every host
that reaches it.

How it keeps the rules (:mod:`._rules`):

- **Atomic in the database**: a claim is one statement (``INSERT ... ON CONFLICT ... DO UPDATE ...
  WHERE`` the claim rule), which READ COMMITTED makes atomic per row; outcomes and renewals are a
  compare-and-set on the attempt's fence and owner; verdicts and resolutions lock the row and ask
  :mod:`._rules`. Claims that arrive together (in one turn of the event loop, or while a statement
  is in flight) are one multi-row statement, and so are outcomes (:mod:`._pg_session`).
- **Durable before the POST**: a claim returns once its statement is committed.
- **The database's clock**: ``now()`` dates every entry and measures every age; no host's clock
  decides anything.
- **Liveness from the database**: an owner is alive while its database session holds its advisory
  lock (:mod:`._pg_sql`). The lock is held by a connection of its own, which must reach the
  server directly or through a pooler in *session* mode: a transaction-pooling proxy (PgBouncer in
  transaction mode) hands the session to others, and the lock with it. Before its POST leaves, an
  owner checks that this connection still answers (:meth:`PostgresJournal.still_holds`).
- **Faults**: a database out of reach, or restarted mid-way, is a
  :class:`~aw_async.errors.JournalError` for each booking not yet claimed (nothing is sent for
  them). An outcome that cannot be written leaves its attempt in flight, an orphan: unknown to its
  own journal at once (which no longer runs it), and to the others once its owner's session is gone
  (as it is after a restart); the next attempt reconciles it, after its settle window.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..errors import JournalError
from ._pg_connect import load_asyncpg, redacted
from ._pg_session import ClaimWork, OutcomeWork, SchemaProblem, Session
from ._pg_sql import SCHEMA_VERSION, Statements, lock_key
from ._rules import (
    DEFAULT_KEEP_REFUSED,
    DEFAULT_KEEP_RESCHEDULED,
    AttemptState,
    Decider,
    JournalEntry,
    Key,
    Terms,
    displaced_by_user,
    may_record_verdict,
    may_resolve,
)
from ._store import Claim, Journal

__all__ = ["SCHEMA_VERSION", "PostgresJournal"]

T = TypeVar("T")

_TRANSACTION_TRIES = 16  # a verdict or resolution that met a deadlock, or a row inserted meanwhile


class _ReadAgain(Exception):
    """The row appeared since it was read: the transaction starts again."""


class PostgresJournal(Journal):
    """A journal in a PostgreSQL database (``pip install 'aw-async[postgres]'``): one journal for
    every process on every host that reaches it.

    Args:
        dsn: a ``postgresql://`` URL. Its password never appears in a message.
        schema: the schema that holds the journal's tables, created on first use.
        connect_timeout: seconds to wait for a connection.
        keep_refused, keep_rescheduled: how long refused and rescheduled entries are kept.

    The journal keeps a connection pool and an owner's connection per event loop; close it with
    :meth:`aclose` (a loop shut down by ``asyncio.run`` closes its own). The role needs ``CREATE`` on
    the database for the first use, and the owner's connection must not go through a
    transaction-pooling proxy (see the module's notes).
    """

    #: A claim whose caller is gone by the time it lands is recorded as refused by its writer: the
    #: guard needs no task of its own for it.
    claims_survive_cancellation = True

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "aw_async",
        connect_timeout: float = 10.0,
        keep_refused: timedelta = DEFAULT_KEEP_REFUSED,
        keep_rescheduled: timedelta = DEFAULT_KEEP_RESCHEDULED,
    ) -> None:
        super().__init__(keep_refused=keep_refused, keep_rescheduled=keep_rescheduled)
        if not isinstance(dsn, str) or not isinstance(schema, str):
            raise TypeError("PostgresJournal takes a postgresql:// URL and a schema name, both str")
        if not schema or "\x00" in schema or len(schema.encode()) > 63:
            raise JournalError(
                f"the schema name {schema!r} is not one PostgreSQL keeps as it is (1 to 63 bytes)"
            )
        self._asyncpg = load_asyncpg()
        self._dsn = dsn
        self._where, self._secrets = redacted(dsn)
        self.schema = schema
        self._sql = Statements(schema)
        self._timeout = connect_timeout
        self._sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Session] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False
        self._errors: tuple[type[BaseException], ...] = (
            self._asyncpg.PostgresError,
            self._asyncpg.InterfaceError,
            self._asyncpg.InternalClientError,
            OSError,
            TimeoutError,
            SchemaProblem,
        )
        self._opening_errors = (*self._errors, ValueError)  # ValueError: the driver could not read the DSN

    def __repr__(self) -> str:
        return f"PostgresJournal({self._where!r}, schema={self.schema!r})"

    @property
    def owner(self) -> str | None:
        """The owner token of this journal in the running event loop (None before its first claim,
        or outside an event loop)."""
        try:
            session = self._sessions.get(asyncio.get_running_loop())
        except RuntimeError:
            return None
        return session.token or None if session is not None else None

    # --- sessions and errors ----------------------------------------------------------------------

    def _failed(self, exc: BaseException) -> JournalError:
        if isinstance(exc, JournalError):
            return exc
        if isinstance(exc, SchemaProblem):
            error = JournalError(f"the journal at {self._where}: {exc}")
        else:
            text = str(exc)
            for secret in self._secrets:
                text = text.replace(secret, "***")
            error = JournalError(f"the journal at {self._where} failed: {type(exc).__name__}: {text}")
        error.__cause__ = exc
        return error

    async def _session(self) -> Session:
        if self._closed:
            raise JournalError(f"the journal at {self._where} is closed")
        loop = asyncio.get_running_loop()
        session = self._sessions.get(loop)
        if session is None or session.closed:
            session = self._sessions[loop] = Session(
                self._asyncpg, self._dsn, self._sql, self._timeout, self._failed
            )
        try:
            await session.open()
        except self._opening_errors as exc:
            raise self._failed(exc) from exc
        return session

    async def _run(self, operation: Callable[[Session], Awaitable[T]]) -> T:
        """Run ``operation`` once the outcomes queued before it are written.

        Raises:
            JournalError: the database could not be reached, read or written.
        """
        session = await self._session()
        try:
            await session.outcomes_written()
            return await operation(session)
        except self._errors as exc:
            raise self._failed(exc) from exc

    async def _transaction(self, operation: Callable[[Session, Any], Awaitable[T]]) -> T:
        """Run ``operation`` in a transaction, again if it met a deadlock or a row inserted meanwhile."""
        deadlock = self._asyncpg.exceptions.DeadlockDetectedError

        async def run(session: Session) -> T:
            for _ in range(_TRANSACTION_TRIES):
                try:
                    async with session.pool.acquire() as connection, connection.transaction():
                        return await operation(session, connection)
                except (_ReadAgain, deadlock):
                    continue
            raise JournalError(f"the journal at {self._where} kept meeting concurrent writes")

        return await self._run(run)

    async def flush(self) -> None:
        session = self._sessions.get(asyncio.get_running_loop())
        if session is not None and not session.closed:
            await session.drained()

    async def aclose(self) -> None:
        self._closed = True
        here = asyncio.get_running_loop()
        for loop, session in list(self._sessions.items()):
            if loop is here:
                await session.close()
            elif loop.is_running():  # another thread's loop: closed there
                await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(session.close(), loop))
        self._sessions.clear()

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
        session = await self._session()
        work = ClaimWork(key, force, settle, server_now, terms, session.loop.create_future())
        return await session.claim(work)

    async def renew(self, entry: JournalEntry, *, server_now: datetime | None = None) -> JournalEntry | None:
        async def renew(session: Session) -> JournalEntry | None:
            if not session.token:
                return None
            row = await session.pool.fetchrow(
                self._sql.renew, session.token, entry.api_root, entry.booking_id, entry.attempt, server_now
            )
            return session.entry_of(row) if row is not None else None

        return await self._run(renew)

    async def still_holds(self, entry: JournalEntry) -> bool:
        session = self._sessions.get(asyncio.get_running_loop())
        if session is None or not session.token or entry.owner != session.token:
            return False
        if session.live.get(entry.key) != entry.attempt:
            return False
        return await session.owner.ping() and entry.owner == session.token

    async def record_outcome(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        session = await self._session()
        work = OutcomeWork(entry, state, new_booking_id, terms, session.loop.create_future())
        session.queue_outcome(work)
        assert work.future is not None
        return await work.future

    def record_outcome_nowait(
        self,
        entry: JournalEntry,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
        terms: Terms | None = None,
    ) -> bool:
        try:
            session = self._sessions.get(asyncio.get_running_loop())
        except RuntimeError:  # no event loop: await record_outcome instead
            return False
        if session is None or session.closed or session.pool is None:
            return False
        session.queue_outcome(OutcomeWork(entry, state, new_booking_id, terms, None))
        return True

    async def record_verdict(
        self,
        key: Key,
        attempt: int,
        state: AttemptState,
        *,
        new_booking_id: int | None = None,
    ) -> bool:
        sql = self._sql

        async def verdict(session: Session, connection: Any) -> bool:
            await connection.execute(sql.root_lock, lock_key(sql.root_lock_prefix + key.api_root))
            entry = await self._locked(session, connection, key)
            if not may_record_verdict(entry, attempt=attempt):
                return False
            if new_booking_id is not None:
                other = await connection.fetchval(sql.result_of, key.api_root, new_booking_id)
                if other not in (None, key.booking_id):
                    return False  # another booking's recorded reschedule
            await self._write_outcome(connection, entry, key, state, Decider.RECONCILIATION, new_booking_id)
            return True

        return await self._transaction(verdict)

    async def resolve(self, key: Key, *, rescheduled_into: int | None) -> JournalEntry | None:
        sql = self._sql

        async def resolve(session: Session, connection: Any) -> JournalEntry | None:
            await connection.execute(sql.root_lock, lock_key(sql.root_lock_prefix + key.api_root))
            entry = await self._locked(session, connection, key)
            if not may_resolve(entry):
                return None
            if rescheduled_into is not None:
                other = await connection.fetchval(sql.result_of, key.api_root, rescheduled_into)
                if other is not None and other != key.booking_id:  # the user says otherwise: the user wins
                    displaced = Key(key.api_root, other)
                    previous = await self._locked(session, connection, displaced)
                    await connection.execute(sql.forget_result, key.api_root, rescheduled_into)
                    if displaced_by_user(previous, rescheduled_into):
                        await self._write_outcome(
                            connection, previous, displaced, AttemptState.UNKNOWN, Decider.USER, None
                        )
            state = AttemptState.RESCHEDULED if rescheduled_into is not None else AttemptState.REFUSED
            await self._write_outcome(connection, entry, key, state, Decider.USER, rescheduled_into)
            return await self._locked(session, connection, key)

        return await self._transaction(resolve)

    async def _locked(self, session: Session, connection: Any, key: Key) -> JournalEntry | None:
        """``key``'s entry, its row locked until the transaction ends."""
        row = await connection.fetchrow(self._sql.one_for_update, session.token, key.api_root, key.booking_id)
        return session.entry_of(row) if row is not None else None

    async def _write_outcome(
        self,
        connection: Any,
        entry: JournalEntry | None,
        key: Key,
        state: AttemptState,
        decider: Decider,
        new_booking_id: int | None,
    ) -> None:
        """Write ``state`` as the outcome of ``entry``'s attempt (or a first entry for ``key``), keeping
        its start; the new booking becomes this key's reschedule, the old one no longer is."""
        sql = self._sql
        root, booking_id = key.api_root, key.booking_id
        if entry is None:
            inserted = await connection.fetchval(
                sql.write_outcome_unattempted, root, booking_id, state.value, new_booking_id, decider.value
            )
            if inserted is None:
                raise _ReadAgain
        else:
            await connection.execute(
                sql.write_outcome,
                root,
                booking_id,
                entry.attempt,
                state.value,
                new_booking_id,
                decider.value,
                entry.readable,
            )
            if entry.new_booking_id is not None:
                await connection.execute(sql.drop_result, root, entry.new_booking_id, booking_id)
        if new_booking_id is not None:
            await connection.execute(sql.record_result, root, new_booking_id, booking_id)

    async def learn_terms(self, key: Key, attempt: int, terms: Terms) -> None:
        async def learn(session: Session) -> None:
            await session.pool.execute(
                self._sql.learn_terms,
                key.api_root,
                key.booking_id,
                attempt,
                terms.to_text(),
                terms.fingerprint,
            )

        await self._run(learn)

    async def learn_server_offset(self, api_root: str, minutes: int) -> None:
        async def learn(session: Session) -> None:
            await session.pool.execute(self._sql.learn_server_offset, api_root, minutes)

        await self._run(learn)

    # --- reads ------------------------------------------------------------------------------------

    async def get_many(self, keys: Iterable[Key]) -> dict[Key, JournalEntry]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}

        async def get_many(session: Session) -> dict[Key, JournalEntry]:
            rows = await session.pool.fetch(
                self._sql.get_many,
                session.token,
                [k.api_root for k in wanted],
                [k.booking_id for k in wanted],
            )
            return {entry.key: entry for entry in map(session.entry_of, rows)}

        return await self._run(get_many)

    async def outstanding(self, api_root: str, fingerprints: Iterable[str | None]) -> list[JournalEntry]:
        wanted = set(fingerprints)
        known = sorted(f for f in wanted if f is not None)

        async def outstanding(session: Session) -> list[JournalEntry]:
            rows = await session.pool.fetch(
                self._sql.outstanding, session.token, api_root, known, None in wanted
            )
            return [session.entry_of(row) for row in rows]

        return await self._run(outstanding)

    async def results_among(self, api_root: str, booking_ids: Iterable[int]) -> dict[int, int]:
        ids = sorted(set(booking_ids))
        if not ids:
            return {}

        async def results(session: Session) -> dict[int, int]:
            rows = await session.pool.fetch(self._sql.results_among, api_root, ids)
            return {row[0]: row[1] for row in rows}

        return await self._run(results)

    async def entries(
        self, api_root: str | None = None, *, states: Iterable[AttemptState] | None = None
    ) -> list[JournalEntry]:
        wanted = set(states) if states is not None else None

        async def entries(session: Session) -> list[JournalEntry]:
            rows = await session.pool.fetch(self._sql.entries, session.token, api_root)
            found = (session.entry_of(row) for row in rows)
            return [e for e in found if wanted is None or e.effective_state in wanted]

        return await self._run(entries)

    async def server_offset(self, api_root: str) -> int | None:
        async def offset(session: Session) -> int | None:
            minutes = await session.pool.fetchval(self._sql.server_offset, api_root)
            return int(minutes) if minutes is not None else None

        return await self._run(offset)

    async def forget_old(self, now: datetime | None = None) -> int:
        async def forget(session: Session) -> int:
            count = await session.pool.fetchval(
                self._sql.forget, now, self.keep_refused, self.keep_rescheduled
            )
            return int(count)

        return await self._run(forget)
