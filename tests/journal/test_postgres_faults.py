"""PostgresJournal on a real PostgreSQL, when things go wrong: a server out of reach or restarted,
a claimant gone, a lost lock, an outcome that cannot be written; and claims and outcomes grouped
into few statements."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from aw_async.errors import JournalError
from aw_async.journal import AttemptState, Key, PostgresJournal
from aw_async.journal._pg_session import Session

from .. import _pg_support
from .._pg_support import SETTLE, key

journal = _pg_support.journal
other = _pg_support.other

# --- faults ----------------------------------------------------------------------------------------


async def test_a_server_out_of_reach_is_a_journal_error_without_the_password(tmp_path: Any) -> None:
    dsn = f"postgresql://someone:s3cret-Pa55@/journal?host={tmp_path}"
    journal = PostgresJournal(dsn)
    assert "s3cret" not in repr(journal)
    answers = await asyncio.gather(
        *(journal.claim(key(n), force=False, settle=SETTLE) for n in range(5)), return_exceptions=True
    )
    for answer in answers:  # one for each booking: none was claimed
        assert isinstance(answer, JournalError)
        assert answer.__cause__ is not None
        assert "s3cret" not in str(answer)
    await journal.aclose()


@pytest.mark.parametrize("dsn", ["postgresql://u:s3cret@host:port/db", "postgresql://u:s3cret@[::1/db"])
async def test_a_dsn_the_driver_cannot_read_is_a_journal_error(dsn: str) -> None:
    journal = PostgresJournal(dsn)
    with pytest.raises(JournalError) as raised:
        await journal.get(key(1))
    assert "s3cret" not in str(raised.value)
    await journal.aclose()


async def test_a_restarted_server_fails_the_claims_under_way_then_serves_a_new_owner(
    postgres_dsn: str, postgres_server: Any, journal: PostgresJournal
) -> None:
    before = await journal.claim(key(1), force=False, settle=SETTLE)
    assert before.entry is not None
    await asyncio.to_thread(postgres_server.restart)
    assert not await journal.still_holds(before.entry)
    answers = await asyncio.gather(
        *(journal.claim(key(n), force=False, settle=SETTLE) for n in range(2, 12)), return_exceptions=True
    )
    assert all(isinstance(a, JournalError) or a.granted for a in answers)  # type: ignore[union-attr]
    for _ in range(20):  # the pool replaces its broken connections as they fail
        try:
            after = await journal.claim(key(100), force=False, settle=SETTLE)
            break
        except JournalError:
            continue
    assert after.entry is not None
    assert after.entry.owner != before.entry.owner
    # The outcome of the attempt under way cannot be recorded: it is unknown, and reconciled.
    assert not await journal.record_outcome(before.entry, AttemptState.RESCHEDULED, new_booking_id=5)
    orphan = await journal.get(key(1))
    assert orphan is not None
    assert orphan.effective_state is AttemptState.UNKNOWN
    assert await journal.record_verdict(key(1), 1, AttemptState.RESCHEDULED, new_booking_id=5)


# --- grouping --------------------------------------------------------------------------------------


class _Counted:
    """Counts the statements asyncpg sends, by their first words."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        original = asyncpg.connection.Connection.fetch

        async def fetch(connection: Any, query: str, *args: Any, **kwargs: Any) -> Any:
            self.sent.append(query)
            return await original(connection, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.connection.Connection, "fetch", fetch)

    def count(self, marker: str) -> int:
        return sum(marker in query for query in self.sent)


async def test_concurrent_claims_and_outcomes_are_grouped_into_few_statements(
    journal: PostgresJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    await journal.get(key(0))  # opened
    counted = _Counted(monkeypatch)
    claims = await asyncio.gather(*(journal.claim(key(n), force=False, settle=SETTLE) for n in range(1, 201)))
    assert all(c.granted for c in claims)
    assert 1 <= counted.count("claimed AS (") <= 3  # 200 claims; one statement unless one was in flight
    for claim in claims:
        assert claim.entry is not None
        journal.record_outcome_nowait(claim.entry, AttemptState.REFUSED)
    await journal.flush()
    assert 1 <= counted.count("done AS (") <= 3
    assert len(await journal.entries(states=[AttemptState.REFUSED])) == 200


async def test_claims_of_one_booking_in_one_group_are_decided_in_order(journal: PostgresJournal) -> None:
    claims = await asyncio.gather(*(journal.claim(key(1), force=True, settle=SETTLE) for _ in range(5)))
    assert [c.granted for c in claims] == [True, False, False, False, False]


def test_claims_per_second_alone_and_grouped(postgres_dsn: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A measurement, printed, never asserted."""
    import time

    async def measure() -> tuple[float, float]:
        journal = PostgresJournal(postgres_dsn)
        try:
            await journal.get(key(0))
            started = time.perf_counter()
            for n in range(1, 301):
                await journal.claim(key(n), force=False, settle=SETTLE)
            alone = 300 / (time.perf_counter() - started)
            started = time.perf_counter()
            for batch in range(10):
                base = 1000 + batch * 100
                await asyncio.gather(
                    *(journal.claim(key(base + n), force=False, settle=SETTLE) for n in range(100))
                )
            grouped = 1000 / (time.perf_counter() - started)
            return alone, grouped
        finally:
            await journal.aclose()

    alone, grouped = asyncio.run(measure())
    with capsys.disabled():
        print(f"\nPostgresJournal claims per second: {alone:.0f} one at a time, {grouped:.0f} grouped by 100")


async def test_a_claim_whose_caller_is_gone_is_given_back_as_refused(journal: PostgresJournal) -> None:
    await journal.get(key(0))  # opened
    caller = asyncio.create_task(journal.claim(key(1), force=False, settle=SETTLE))
    await asyncio.sleep(0)  # its claim is queued, and the writer is on its way
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await journal.flush()
    entry = await journal.get(key(1))
    assert entry is not None
    assert entry.state is AttemptState.REFUSED  # nothing can have been sent: nobody had the claim
    assert (await journal.claim(key(1), force=False, settle=SETTLE)).granted


async def test_a_claim_granted_in_the_turn_its_caller_is_cancelled_is_given_back_as_refused(
    journal: PostgresJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The grant lands, and in the same turn of the loop the caller's timeout fires: the answer is
    # in a future nobody will read. Left in flight under this live process, the booking would be
    # held until it exits; nothing was sent, so it is given back.
    await journal.get(key(0))  # opened
    caller: asyncio.Task[Any] | None = None
    deliver = Session._deliver_claim

    def deliver_then_cancel(work: Any, claim: Any, problem: Any) -> None:
        deliver(work, claim, problem)
        if caller is not None and claim is not None and claim.granted:
            caller.cancel()

    monkeypatch.setattr(Session, "_deliver_claim", staticmethod(deliver_then_cancel))
    caller = asyncio.create_task(journal.claim(key(2), force=False, settle=SETTLE))
    with pytest.raises(asyncio.CancelledError):
        await caller
    caller = None
    await journal.flush()
    entry = await journal.get(key(2))
    assert entry is not None
    assert entry.state is AttemptState.REFUSED
    assert (await journal.claim(key(2), force=False, settle=SETTLE)).granted


async def test_nothing_is_claimed_under_an_owner_whose_lock_is_gone(journal: PostgresJournal) -> None:
    first = await journal.claim(key(1), force=False, settle=SETTLE)
    assert first.entry is not None
    # White box: the owner's connection lives on, but its lock is released, as if a proxy had
    # handed its session to someone else. The claim statement sees it and takes a new owner.
    session = journal._sessions[asyncio.get_running_loop()]
    await session.owner._connection.execute("SELECT pg_advisory_unlock_all()")
    second = await journal.claim(key(2), force=False, settle=SETTLE)
    assert second.granted
    assert second.entry is not None
    assert second.entry.owner != first.entry.owner
    orphan = await journal.get(key(1))
    assert orphan is not None
    assert orphan.effective_state is AttemptState.UNKNOWN


async def test_an_outcome_that_cannot_be_written_leaves_an_orphan(
    journal: PostgresJournal, other: PostgresJournal, monkeypatch: pytest.MonkeyPatch
) -> None:
    claim = await journal.claim(key(1), force=False, settle=SETTLE)
    assert claim.entry is not None
    session = journal._sessions[asyncio.get_running_loop()]

    async def refused(group: object) -> set[Key]:
        raise OSError("the database refused the write")

    monkeypatch.setattr(session, "_outcome_statement", refused)
    with pytest.raises(JournalError, match="refused the write"):
        await journal.record_outcome(claim.entry, AttemptState.RESCHEDULED, new_booking_id=8)
    monkeypatch.undo()
    mine = await journal.get(key(1))
    assert mine is not None
    assert mine.effective_state is AttemptState.UNKNOWN  # its journal no longer runs it
    theirs = await other.get(key(1))
    assert theirs is not None
    assert theirs.effective_state is AttemptState.IN_FLIGHT  # its owner's session lives
    assert not await journal.still_holds(claim.entry)
    assert not (await journal.claim(key(1), force=False, settle=SETTLE)).granted  # reconcile first
    forced = await journal.claim(key(1), force=True, settle=SETTLE)
    assert forced.granted
    assert forced.entry is not None
    assert forced.entry.attempt == 2
