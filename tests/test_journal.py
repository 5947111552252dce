"""The journals themselves: the claim rule, durability and atomicity on a real sqlite file, what they
forget and when, and liveness of an attempt's owner."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aw_async.journal import (
    AttemptState,
    Journal,
    JournalEntry,
    MemoryJournal,
    Owner,
    SqliteJournal,
    decide_claim,
)

LEASE = timedelta(minutes=3)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["memory", "sqlite"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    made: Journal = MemoryJournal() if request.param == "memory" else SqliteJournal(tmp_path / "j.sqlite3")
    yield made
    await made.aclose()


def entry(state: AttemptState, **changes: object) -> JournalEntry:
    return JournalEntry(
        **{"booking_id": 1, "state": state, "attempted_at": NOW, "updated_at": NOW, **changes}
    )  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("state", "force", "after_reconcile", "expected"),
    [
        (None, False, False, "claim"),
        (AttemptState.REFUSED, False, False, "claim"),  # a refusal does not block a later attempt
        (AttemptState.RESCHEDULED, False, False, "refuse"),
        (AttemptState.RESCHEDULED, True, False, "claim"),
        (AttemptState.UNKNOWN, False, False, "refuse"),  # reconcile first
        (AttemptState.UNKNOWN, False, True, "claim"),
        (AttemptState.UNKNOWN, True, False, "claim"),
    ],
)
def test_the_claim_rule(
    state: AttemptState | None, force: bool, after_reconcile: bool, expected: str
) -> None:
    current = entry(state) if state is not None else None
    assert decide_claim(current, now=NOW, force=force, after_reconcile=after_reconcile) == expected


def test_an_attempt_in_flight_is_never_claimed_twice_even_forced() -> None:
    live = entry(AttemptState.IN_FLIGHT, owner=str(Owner.here()), lease_until=NOW + LEASE)
    for force in (False, True):
        assert decide_claim(live, now=NOW, force=force, after_reconcile=True) == "refuse"


def test_an_attempt_whose_owner_is_gone_is_unknown() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    gone = Owner(Owner.here().host, int(dead.stdout), "abc")
    assert entry(AttemptState.IN_FLIGHT, owner=str(gone), lease_until=NOW + LEASE).effective_state(NOW) == (
        AttemptState.UNKNOWN
    )
    elsewhere = Owner("another-host", 1, "abc")
    live = entry(AttemptState.IN_FLIGHT, owner=str(elsewhere), lease_until=NOW + LEASE)
    assert live.effective_state(NOW) is AttemptState.IN_FLIGHT  # only its lease can tell
    assert live.effective_state(NOW + LEASE) is AttemptState.UNKNOWN


async def test_claim_and_settle(journal: Journal) -> None:
    me = Owner.here()
    claim = await journal.claim(7, owner=me, lease=LEASE)
    assert claim.granted
    assert (await journal.get(7)).state is AttemptState.IN_FLIGHT  # type: ignore[union-attr]
    assert not (await journal.claim(7, owner=Owner.here(), lease=LEASE)).granted
    await journal.settle(7, AttemptState.RESCHEDULED, new_booking_id=70)
    done = await journal.get(7)
    assert done is not None
    assert (done.state, done.new_booking_id, done.attempted_at) == (
        AttemptState.RESCHEDULED,
        70,
        claim.entry.attempted_at,  # type: ignore[union-attr]
    )
    refused = await journal.claim(7, owner=me, lease=LEASE)
    assert not refused.granted
    assert refused.entry == done
    assert (await journal.claim(7, owner=me, lease=LEASE, force=True)).granted


async def test_what_a_journal_forgets_and_when(journal: Journal) -> None:
    me = Owner.here()
    for booking_id, state in enumerate(AttemptState, 1):
        await journal.claim(booking_id, owner=me, lease=LEASE)
        if state is not AttemptState.IN_FLIGHT:
            await journal.settle(
                booking_id, state, new_booking_id=100 if state is AttemptState.RESCHEDULED else None
            )
    now = datetime.now(UTC)
    assert await journal.forget_old(now) == 0
    assert await journal.forget_old(now + timedelta(days=2)) == 1  # refused: after a day
    assert await journal.forget_old(now + timedelta(days=91)) == 1  # rescheduled: after 90 days
    kept = {e.booking_id: e.state for e in await journal.entries()}
    assert kept == {1: AttemptState.IN_FLIGHT, 4: AttemptState.UNKNOWN}  # never forgotten
    assert await journal.forget_old(now + timedelta(days=10_000)) == 0


async def test_a_memory_journal_stays_bounded_and_drops_settled_entries_first() -> None:
    journal = MemoryJournal(max_entries=100)
    me = Owner.here()
    await journal.claim(0, owner=me, lease=LEASE)
    await journal.settle(0, AttemptState.UNKNOWN)
    for booking_id in range(1, 1000):
        await journal.claim(booking_id, owner=me, lease=LEASE)
        await journal.settle(booking_id, AttemptState.RESCHEDULED, new_booking_id=booking_id + 10_000)
    kept = await journal.entries()
    assert len(kept) == 100
    assert kept[0].booking_id == 0  # the unknown one outlives every settled one
    assert [e.booking_id for e in kept[1:]] == list(range(901, 1000))  # the newest


async def test_a_sqlite_journal_is_committed_before_claim_returns(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        assert (await journal.claim(5, owner=Owner.here(), lease=LEASE)).granted
        with sqlite3.connect(path) as other:  # another connection, as another process would see it
            row = other.execute("SELECT state FROM reschedules WHERE booking_id = 5").fetchone()
        assert row == ("in_flight",)
    finally:
        await journal.aclose()


async def test_two_sqlite_journals_on_one_file_grant_each_booking_once(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    first, second = SqliteJournal(path), SqliteJournal(path)
    try:
        a, b = Owner.here(), Owner.here()
        claims = await asyncio.gather(
            *(
                journal.claim(n, owner=owner, lease=LEASE)
                for n in range(200)
                for journal, owner in ((first, a), (second, b))
            )
        )
        granted = [claim.entry.booking_id for claim in claims if claim.granted]  # type: ignore[union-attr]
        assert sorted(granted) == list(range(200))
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_sqlite_journal_survives_its_process(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    await journal.claim(3, owner=Owner.here(), lease=LEASE)
    await journal.settle(3, AttemptState.RESCHEDULED, new_booking_id=33)
    await journal.aclose()
    reopened = SqliteJournal(path)
    try:
        found = await reopened.get(3)
        assert found is not None
        assert (found.state, found.new_booking_id) == (AttemptState.RESCHEDULED, 33)
    finally:
        await reopened.aclose()


async def test_a_closed_journal_refuses_work(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    await journal.get(1)
    await journal.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await journal.get(1)


async def test_a_release_gives_back_only_the_owners_claim_in_flight(journal: Journal) -> None:
    me, other = Owner.here(), Owner.here()
    await journal.claim(1, owner=me, lease=LEASE)
    await journal.release(1, other)  # not its claim: untouched
    assert (await journal.get(1)).state is AttemptState.IN_FLIGHT  # type: ignore[union-attr]
    await journal.release(1, me)
    assert (await journal.get(1)).state is AttemptState.REFUSED  # type: ignore[union-attr]
    await journal.claim(2, owner=me, lease=LEASE)
    await journal.settle(2, AttemptState.RESCHEDULED, new_booking_id=20)
    await journal.release(2, me)  # a release never erases what is known
    assert (await journal.get(2)).state is AttemptState.RESCHEDULED  # type: ignore[union-attr]


async def test_a_failing_operation_fails_its_caller_and_the_journal_lives_on(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    try:

        def broken(connection: object) -> None:
            raise KeyError("a bug in an operation")

        with pytest.raises(KeyError):
            await journal._do(broken)  # type: ignore[arg-type]
        assert (await journal.claim(9, owner=Owner.here(), lease=LEASE)).granted  # still serving
    finally:
        await journal.aclose()


async def test_a_batchs_flight_runs_in_its_first_callers_task() -> None:
    journal = MemoryJournal()
    runs, release = [], asyncio.Event()
    tasks_before = len(asyncio.all_tasks())

    async def work() -> int:
        runs.append(asyncio.current_task())
        assert len(asyncio.all_tasks()) == tasks_before + 2  # the callers' own tasks, no more
        await release.wait()
        return 7

    callers = [asyncio.ensure_future(journal.single_flight(1, work, detached=False)) for _ in range(2)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == [7, 7]
    assert runs == [callers[0]]  # run by its first caller, in that caller's task
    assert not journal._flights


@pytest.mark.parametrize("detached", [True, False])
async def test_a_flights_error_reaches_every_waiter(detached: bool) -> None:
    journal = MemoryJournal()

    async def work() -> int:
        await asyncio.sleep(0)
        raise LookupError("no such booking")

    calls = (journal.single_flight(1, work, detached=detached) for _ in range(3))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3
    assert len({id(r) for r in results}) == 1  # one flight, one error


@pytest.mark.parametrize("detached", [True, False])
async def test_a_cancelled_waiter_stops_waiting_and_the_flight_goes_on(detached: bool) -> None:
    journal = MemoryJournal()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    runner = asyncio.ensure_future(journal.single_flight(1, work, detached=detached))
    waiters = [asyncio.ensure_future(journal.single_flight(1, work, detached=detached)) for _ in range(2)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    release.set()
    assert await runner == 7
    assert await waiters[1] == 7
    assert waiters[0].cancelled()


async def test_a_single_calls_flight_outlives_its_first_caller_while_another_waits() -> None:
    journal = MemoryJournal()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return 7

    first = asyncio.ensure_future(journal.single_flight(1, work))
    second = asyncio.ensure_future(journal.single_flight(1, work))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 7
    assert first.cancelled()
    assert runs == 1  # one flight: the cancelled caller only stopped waiting


async def test_a_single_calls_flight_is_cancelled_with_its_last_caller_after_its_bookkeeping() -> None:
    journal = MemoryJournal()
    done: list[str] = []

    async def work() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # the bookkeeping of a cancelled attempt, which awaits
            done.append("recorded")
            raise
        return 7

    caller = asyncio.ensure_future(journal.single_flight(1, work))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert done == ["recorded"]  # finished before the caller's cancellation propagated
    assert not journal._flights


async def test_when_a_batchs_runner_is_cancelled_a_waiter_runs_the_work_again() -> None:
    # The runner's work is cancelled with it (the guard then records what it must: a claim given
    # back, or an outcome unknown); the next waiter runs the work itself, and so finds that record.
    journal = MemoryJournal()
    started: list[asyncio.Task[object] | None] = []

    async def work() -> int:
        started.append(asyncio.current_task())
        await asyncio.sleep(0.01 if len(started) == 1 else 0)
        return len(started)

    runner = asyncio.ensure_future(journal.single_flight(1, work, detached=False))
    waiters = [asyncio.ensure_future(journal.single_flight(1, work, detached=False)) for _ in range(2)]
    await asyncio.sleep(0)
    runner.cancel()
    assert await asyncio.gather(*waiters) == [2, 2]  # one new run, shared by both waiters
    assert runner.cancelled()
    assert started == [runner, waiters[0]]


async def test_the_built_in_journals_record_an_outcome_without_awaiting(tmp_path: Path) -> None:
    memory = MemoryJournal()
    assert memory.settle_nowait(1, AttemptState.REFUSED)
    assert (await memory.get(1)).state is AttemptState.REFUSED  # type: ignore[union-attr]
    sqlite = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        assert not sqlite.settle_nowait(1, AttemptState.REFUSED)  # not open yet: settle() opens it
        await sqlite.settle(1, AttemptState.REFUSED)
        assert sqlite.settle_nowait(2, AttemptState.UNKNOWN)
        assert (await sqlite.get(2)).state is AttemptState.UNKNOWN  # type: ignore[union-attr]
    finally:
        await sqlite.aclose()
    assert not sqlite.settle_nowait(3, AttemptState.UNKNOWN)  # closed: nothing queued


class _AwaitedJournal(MemoryJournal):
    """A journal that can only record an outcome by awaiting (the base class's default)."""

    def settle_nowait(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> bool:
        return Journal.settle_nowait(self, booking_id, state, new_booking_id=new_booking_id)

    async def settle(
        self, booking_id: int, state: AttemptState, *, new_booking_id: int | None = None
    ) -> None:
        await asyncio.sleep(0)
        await super().settle(booking_id, state, new_booking_id=new_booking_id)


async def test_an_outcome_a_journal_must_await_is_recorded_even_for_a_cancelled_caller() -> None:
    from aw_async._once import RescheduleGuard

    journal = _AwaitedJournal()
    guard = RescheduleGuard(journal, lease=LEASE, reconcile=None)  # type: ignore[arg-type]

    async def attempt(progress: object) -> object:
        progress.posting = True  # type: ignore[attr-defined]
        await asyncio.sleep(1)
        raise AssertionError("cancelled before this")

    call = asyncio.ensure_future(guard.run(5, attempt))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert (await journal.get(5)).state is AttemptState.UNKNOWN  # type: ignore[union-attr]


async def test_forgetting_walks_the_expired_entries_not_the_whole_journal() -> None:
    journal = MemoryJournal(keep_refused=timedelta(hours=1))
    now = datetime.now(UTC)
    for booking_id in range(1, 4):  # old refusals, first in the journal's order
        journal._put(entry(AttemptState.REFUSED, booking_id=booking_id, updated_at=now - timedelta(hours=2)))
    for booking_id in range(10, 1010):  # then young ones, which a pass must not even look at
        journal._put(entry(AttemptState.REFUSED, booking_id=booking_id, updated_at=now))
    looked: list[int] = []
    expired = journal._expired

    def counting(item: JournalEntry, at: datetime) -> bool:
        looked.append(item.booking_id)
        return expired(item, at)

    journal._expired = counting  # type: ignore[method-assign]
    assert await journal.forget_old(now) == 3
    assert looked == [1, 2, 3]
    assert len(await journal.entries()) == 1000
