"""One event loop's share of a ``PostgresJournal``: its connection pool, its owner, and its writer.

asyncpg's connections belong to the event loop that opened them, so a journal keeps one
:class:`Session` per running loop (a process that runs loops one after another, as tests do, gets
one for each; a session closes itself when its loop shuts down its async generators, as
``asyncio.run`` does, committing what was queued).

- **The owner** (:mod:`._pg_owner`) is an advisory lock on a connection of its own; this session
  remembers which of its attempts it runs (``live``): only those are alive to it, so an attempt
  whose outcome could not be written is an orphan, unknown, even while the owner lives.
- **The writer** is one task that writes what callers queue, in groups: every outcome queued so far
  in one statement, then every claim queued so far in one statement (outcomes first, so a claim sees
  every outcome this process recorded before it). Callers that arrive while a statement is in
  flight form the next group.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

import attrs

from ..errors import JournalError
from ._pg_owner import OwnerSession
from ._pg_sql import SCHEMA_VERSION, Statements
from ._rules import AttemptState, Decider, JournalEntry, Key, Terms, may_claim
from ._store import Claim

__all__ = ["ClaimWork", "OutcomeWork", "SchemaProblem", "Session"]

log = logging.getLogger("aw_async")

_MAX_GROUP = 1000  # claims or outcomes written in one statement at most
_POOL_SIZE = 4
_CLAIM_TRIES = 8  # a claim refused by a row that another owner changed meanwhile is asked again
_CLOSE_WAIT = 10.0  # seconds a closing session waits for its connections before cutting them
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SchemaProblem(Exception):
    """The database holds a journal this version must not use."""


@attrs.define(eq=False)
class ClaimWork:
    key: Key
    force: bool
    settle: float
    server_now: datetime | None
    terms: Terms | None
    future: asyncio.Future[Claim]


@attrs.define(eq=False)
class OutcomeWork:
    entry: JournalEntry
    state: AttemptState
    new_booking_id: int | None
    terms: Terms | None
    future: asyncio.Future[bool] | None  # None: queued without a waiter


class Session:
    """One event loop's pool, owner and writer.

    Args:
        failed: turns a database error into the JournalError a caller sees.
    """

    def __init__(
        self,
        asyncpg: ModuleType,
        dsn: str,
        statements: Statements,
        connect_timeout: float,
        failed: Callable[[BaseException], JournalError],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self._asyncpg = asyncpg
        self._dsn = dsn
        self._sql = statements
        self._timeout = connect_timeout
        self._failed = failed
        self.pool: Any = None
        self.owner = OwnerSession(asyncpg, dsn, connect_timeout, self._owner_lost)
        self.live: dict[Key, int] = {}  # the attempt of each key this owner runs now
        self.claiming: collections.Counter[Key] = collections.Counter()  # keys with a claim under way
        self._claims: list[ClaimWork] = []
        self._outcomes: list[OutcomeWork] = []
        self._writer: asyncio.Task[None] | None = None
        self._queued = self._written = 0  # outcomes
        self._progress = asyncio.Condition()
        self._opening = asyncio.Lock()
        self._keeper: Any = None
        self.closed = False

    # --- opening and closing ----------------------------------------------------------------------

    async def open(self) -> None:
        """Open the pool and check the schema (creating it on first use), once."""
        if self.pool is not None and not self.closed:
            return  # open: no need to wait on the opening
        async with self._opening:  # the first use opens, once, however many arrive at once
            if self.closed:
                raise JournalError("this journal is closed")
            if self.pool is not None:
                return
            pool = await self._asyncpg.create_pool(
                self._dsn,
                min_size=1,
                max_size=_POOL_SIZE,
                timeout=self._timeout,
                server_settings={"application_name": "aw-async journal"},
            )
            try:
                async with pool.acquire() as connection:
                    await self._check_schema(connection)
            except BaseException:
                pool.terminate()
                raise
            self.pool = pool
            self._keeper = self._close_with_loop()
            await self._keeper.__anext__()  # the loop closes it when it shuts down

    async def _close_with_loop(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if not self.closed:
                await self.close()

    async def _check_schema(self, connection: Any) -> None:
        """Create the schema on first use, under a lock that makes concurrent first uses wait for
        each other; refuse one this version cannot read."""
        sql = self._sql
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", sql.setup_lock)
            if await connection.fetchval(sql.has_version, sql.version_table):
                version = await connection.fetchval(sql.version)
                if version is None:
                    raise SchemaProblem(f"its schema {sql.schema!r} has lost its version")
                if version > SCHEMA_VERSION:
                    raise SchemaProblem(
                        f"its schema {sql.schema!r} has version {version}, newer than this aw-async knows "
                        f"({SCHEMA_VERSION}): upgrade aw-async to use it"
                    )
            elif await connection.fetchval(sql.relations, sql.schema):
                raise SchemaProblem(f"the schema {sql.schema!r} holds tables that are not a journal's")
            else:
                await connection.execute(sql.create)

    async def close(self) -> None:
        """Write what is queued, then close the connections (the owner's lock goes with its own)."""
        self.closed = True
        writer = self._writer
        if writer is not None and not writer.done() and writer is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if self._outcomes and self.pool is not None:
            await self._write_all()  # the writer was cancelled: the loop is shutting down
        for work in self._claims:
            if not work.future.done():
                work.future.set_exception(JournalError("this journal is closed"))
        self._claims.clear()
        pool, self.pool = self.pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_WAIT)
            except Exception:
                pool.terminate()
        await self.owner.close()
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.ag_running:
            await keeper.aclose()

    # --- the owner ------------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """This session's owner token ("" before its first claim)."""
        return self.owner.token

    def _owner_lost(self) -> None:
        self.live.clear()  # orphans now: this owner no longer runs them

    # --- reading rows -----------------------------------------------------------------------------

    def entry_of(self, row: Any, *, pending: bool = True) -> JournalEntry:
        """The entry of a row (as :class:`Statements` reads them), with its owner's liveness: this
        owner's attempt is alive while this session runs it (or, with ``pending``, claims its key),
        another's while its lock is held. A row this version cannot read is an unreadable entry."""
        try:
            state = AttemptState(row["state"])
            key = Key(row["api_root"], row["booking_id"])
            alive = None
            if state is AttemptState.IN_FLIGHT:
                if self.token and row["owner"] == self.token:
                    alive = self.live.get(key) == row["attempt"] or (pending and key in self.claiming)
                else:
                    alive = bool(row["lock_alive"])
            terms = row["terms"]
            decided_by = row["decided_by"]
            return JournalEntry(
                api_root=key.api_root,
                booking_id=key.booking_id,
                state=state,
                attempt=row["attempt"],
                started_at=row["started_at"],
                updated_at=row["updated_at"],
                settle_seconds=row["settle_seconds"],
                age=max(row["age"], 0.0),
                owner=row["owner"],
                owner_alive=alive,
                server_started_at=row["server_started_at"],
                terms=Terms.from_text(terms) if terms is not None else None,
                new_booking_id=row["new_booking_id"],
                decided_by=Decider(decided_by) if decided_by is not None else None,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            log.warning("the journal holds a row it cannot read, for booking %r", row["booking_id"])
            return JournalEntry(
                api_root=str(row["api_root"]),
                booking_id=row["booking_id"],
                state=AttemptState.UNKNOWN,
                attempt=row["attempt"],
                started_at=_EPOCH,
                updated_at=_EPOCH,
                settle_seconds=0.0,
                readable=False,
            )

    # --- the writer -------------------------------------------------------------------------------

    async def claim(self, work: ClaimWork) -> Claim:
        self.claiming[work.key] += 1
        self._claims.append(work)
        self._kick()
        try:
            return await work.future
        except asyncio.CancelledError:
            # Cancelled in the turn its claim landed (a timeout, a sibling's failure): the grant is
            # in the future, and nobody will act on it. Nothing was sent: give it back.
            future = work.future
            if future.done() and not future.cancelled() and future.exception() is None:
                claim = future.result()
                if claim.granted and claim.entry is not None:
                    self.queue_outcome(OutcomeWork(claim.entry, AttemptState.REFUSED, None, None, None))
            raise

    def queue_outcome(self, work: OutcomeWork) -> None:
        """Queue an outcome; the attempt stops being live now (anything this process asks next
        waits for the outcome to be written, so it sees it)."""
        if self.live.get(work.entry.key) == work.entry.attempt:
            del self.live[work.entry.key]
        self._outcomes.append(work)
        self._queued += 1
        self._kick()

    async def outcomes_written(self) -> None:
        """Wait until every outcome queued so far is written (or given up)."""
        target = self._queued
        if self._written >= target:
            return
        self._kick()
        async with self._progress:
            await self._progress.wait_for(lambda: self._written >= target)

    async def drained(self) -> None:
        """Wait until the writer has written everything queued (claims too, and what they queue)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait({self._writer})

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = self.loop.create_task(self._write_all(), name="aw-async journal writer")

    async def _write_all(self) -> None:
        while self._outcomes or self._claims:
            if self._outcomes:
                group = self._outcomes[:_MAX_GROUP]
                del self._outcomes[: len(group)]
                try:
                    await self._write_outcomes(group)
                except asyncio.CancelledError:
                    self._outcomes[:0] = group  # written again by close() (a compare-and-set)
                    raise
                self._written += len(group)
                async with self._progress:
                    self._progress.notify_all()
            else:
                group_ = self._claims[:_MAX_GROUP]
                del self._claims[: len(group_)]
                await self._write_claims(group_)

    async def _write_outcomes(self, group: list[OutcomeWork]) -> None:
        try:
            written = await self._outcome_statement(group)
        except Exception as exc:
            if len(group) > 1:  # one bad outcome must not fail the others: each alone
                for work in group:
                    await self._write_outcomes([work])
                return
            self._deliver_outcome(group[0], False, self._failed(exc))
            return
        latest = {work.entry.key: work for work in group}
        for work in group:
            self._deliver_outcome(work, work.entry.key in written and latest[work.entry.key] is work, None)

    async def _outcome_statement(self, group: list[OutcomeWork]) -> set[Key]:
        if not self.token or self.pool is None:
            return set()
        latest = {work.entry.key: work for work in group}  # the last word per key
        latest = dict(sorted(latest.items()))  # rows locked in key order, as claims lock them
        rows = await self.pool.fetch(
            self._sql.outcomes,
            self.token,
            [w.entry.api_root for w in latest.values()],
            [w.entry.booking_id for w in latest.values()],
            [w.entry.attempt for w in latest.values()],
            [w.state.value for w in latest.values()],
            [w.new_booking_id for w in latest.values()],
            [w.terms.to_text() if w.terms is not None else None for w in latest.values()],
            [w.terms.fingerprint if w.terms is not None else None for w in latest.values()],
        )
        return {Key(row[0], row[1]) for row in rows}

    @staticmethod
    def _deliver_outcome(work: OutcomeWork, ok: bool, problem: JournalError | None) -> None:
        future = work.future
        if future is None:
            if problem is not None:
                log.error("the journal could not record the outcome of %s: %s", work.entry.key, problem)
            elif not ok:
                log.error("the journal did not record the outcome of %s: not its owner's", work.entry.key)
        elif not future.done():
            if problem is not None:
                future.set_exception(problem)
            else:
                future.set_result(ok)

    async def _write_claims(self, group: list[ClaimWork]) -> None:
        pending = group
        try:
            for _ in range(_CLAIM_TRIES):
                again: list[ClaimWork] = []
                for run in _runs_of_distinct_keys(pending):
                    try:
                        again += await self._claim_statement(run)
                    except self._asyncpg.exceptions.DeadlockDetectedError:
                        again += run  # rolled back, nothing claimed: ask again
                pending = again
                if not pending:
                    return
            for work in pending:  # contended past reason: nothing was claimed for these
                self._deliver_claim(work, None, JournalError(f"the entry of {work.key} kept changing"))
        except Exception as exc:
            problem = exc if isinstance(exc, JournalError) else self._failed(exc)
            for work in group:
                self._deliver_claim(work, None, problem)
        finally:
            for work in group:
                if not work.future.done():
                    work.future.cancel()  # the writer itself was cancelled
                self.claiming[work.key] -= 1
                if self.claiming[work.key] <= 0:
                    del self.claiming[work.key]

    async def _claim_statement(self, run: list[ClaimWork]) -> list[ClaimWork]:
        """Claim ``run`` (distinct keys) in one statement; the claims to ask again."""
        token, key = await self.owner.current()
        rows = await self.pool.fetch(
            self._sql.claim,
            token,
            [w.key.api_root for w in run],
            [w.key.booking_id for w in run],
            [w.force for w in run],
            [w.settle for w in run],
            [w.server_now for w in run],
            [w.terms.to_text() if w.terms is not None else None for w in run],
            [w.terms.fingerprint if w.terms is not None else None for w in run],
            [self.live.get(w.key) for w in run],
            key,
        )
        if rows and not rows[0]["holding"]:  # the owner's lock is gone: nothing was claimed
            self.owner.drop()
            return run
        found = {Key(row["key_root"], row["key_id"]): row for row in rows}
        again = []
        for work in run:
            row = found[work.key]
            if row["granted"]:
                self.live[work.key] = row["attempt"]
                granted = self.entry_of(row, pending=False)
                if work.future.done():  # its caller is gone: nothing can have been sent
                    self.queue_outcome(OutcomeWork(granted, AttemptState.REFUSED, None, None, None))
                self._deliver_claim(work, Claim(True, granted), None)
                continue
            entry = self.entry_of(row, pending=False) if row["api_root"] is not None else None
            if entry is None or may_claim(entry, force=work.force):
                again.append(work)  # changed since the statement began: ask again
            else:
                self._deliver_claim(work, Claim(False, entry), None)
        return again

    @staticmethod
    def _deliver_claim(work: ClaimWork, claim: Claim | None, problem: BaseException | None) -> None:
        if work.future.done():
            return
        if claim is not None:
            work.future.set_result(claim)
        else:
            work.future.set_exception(problem or JournalError("the claim was not written"))


def _runs_of_distinct_keys(works: list[ClaimWork]) -> list[list[ClaimWork]]:
    """``works`` in order, cut so that no run holds a key twice (a statement updates a row once);
    each run sorted by key, the order in which every statement takes its rows' locks, so that two
    processes' statements do not deadlock (should one still, it is asked again)."""
    runs: list[list[ClaimWork]] = [[]]
    seen: set[Key] = set()
    for work in works:
        if work.key in seen:
            runs.append([])
            seen = set()
        runs[-1].append(work)
        seen.add(work.key)
    return [sorted(run, key=lambda work: work.key) for run in runs]
