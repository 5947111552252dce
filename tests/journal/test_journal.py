"""The journal's stores: every transition of the rules, atomic and fenced; owners alive exactly as
long as their process; clocks that cannot make an attempt old; files that stay private; failures
that are typed. Each store runs the same tests (the PostgreSQL one in test_postgres_journal.py)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import stat
import sys
import threading
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import attrs
import pytest

from aw_async import AdultWorkClient
from aw_async.errors import JournalError
from aw_async.journal import (
    AttemptState,
    Decider,
    Journal,
    JournalEntry,
    Key,
    MemoryJournal,
    SqliteJournal,
    Terms,
)
from aw_async.journal._rules import claimed, may_claim
from aw_async.journal._sqlite_tables import _select_ids, terms_columns

from ..clocks import ManualClocks
from ..scripted import eventually

ROOT = "https://api.example"
K = Key(ROOT, 11)
TERMS = Terms(
    user_id=5,
    duration=15,
    credits=Decimal("8.00"),
    method=2,
    phone_number=None,
    skype_name=None,
    comments="w",
)
ROOT_DIR = Path(__file__).resolve().parents[2]


@pytest.fixture
def clock() -> ManualClocks:
    return ManualClocks()


@pytest.fixture(params=["memory", "sqlite"])
async def journal(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClocks
) -> AsyncIterator[Journal]:
    made: Journal = (
        MemoryJournal(clocks=clock.clocks())
        if request.param == "memory"
        else SqliteJournal(tmp_path / "journal.sqlite3", clocks=clock.clocks())
    )
    yield made
    await made.aclose()


async def claim(journal: Journal, key: Key = K, *, force: bool = False) -> JournalEntry | None:
    """The granted attempt, or None."""
    answer = await journal.claim(key, force=force, settle=120.0, terms=TERMS)
    return answer.entry if answer.granted else None


# --- the rules, as the pure functions every store applies -------------------------------------


def _entry(state: AttemptState, *, alive: bool | None = None, readable: bool = True) -> JournalEntry:
    base = claimed(None, K, owner="o", now=ManualClocks().wall, settle=1.0, server_now=None, terms=None)
    return JournalEntry(
        api_root=ROOT,
        booking_id=11,
        state=state,
        attempt=1,
        started_at=base.started_at,
        updated_at=base.started_at,
        settle_seconds=1.0,
        owner="o",
        owner_alive=alive,
        new_booking_id=99 if state is AttemptState.RESCHEDULED else None,
        readable=readable,
    )


@pytest.mark.parametrize(
    ("entry", "free", "forced"),
    [
        (None, True, True),
        (_entry(AttemptState.REFUSED), True, True),
        (_entry(AttemptState.RESCHEDULED), False, True),
        (_entry(AttemptState.UNKNOWN), False, True),  # reconcile first: a verdict of "refused" frees it
        (_entry(AttemptState.IN_FLIGHT, alive=True), False, False),  # never two at once, even forced
        (_entry(AttemptState.IN_FLIGHT, alive=False), False, True),  # its owner died: unknown
        (_entry(AttemptState.REFUSED, readable=False), False, True),  # unreadable: unknown, never free
    ],
)
def test_the_claim_rule(entry: JournalEntry | None, free: bool, forced: bool) -> None:
    assert may_claim(entry, force=False) is free
    assert may_claim(entry, force=True) is forced


# --- transitions, fenced ----------------------------------------------------------------------


def test_terms_are_kept_as_canonical_json_of_every_field() -> None:
    # Stores compare and index this text (twins share it), and files written by earlier versions
    # hold it: it must stay what json.dumps of attrs.asdict wrote, for every field there is.
    odd = Terms(
        user_id=None,
        duration=30,
        credits=Decimal("12.5"),
        method=1,
        phone_number="+44 7700 900123",
        skype_name="s\u00e9",
        comments='a "b"\n',
    )
    for terms in (TERMS, odd):
        fields = attrs.asdict(terms)
        fields["credits"] = str(terms.credits)
        expected = json.dumps(fields, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        assert terms.to_text() == expected
        assert Terms.from_text(expected) == terms
        assert terms.fingerprint == hashlib.sha256(expected.encode("ascii")).hexdigest()[:32]
        assert terms_columns(terms) == (expected, terms.fingerprint)


async def test_a_claim_then_an_outcome_then_the_next_attempt(journal: Journal) -> None:
    first = await claim(journal)
    assert first is not None
    assert (first.attempt, first.state, first.owner_alive) == (1, AttemptState.IN_FLIGHT, True)
    assert await claim(journal, force=True) is None  # in flight, alive: not even forced
    assert await journal.record_outcome(first, AttemptState.REFUSED)
    second = await claim(journal)
    assert second is not None
    assert second.attempt == 2  # the fence grows with every claim
    assert await journal.record_outcome(second, AttemptState.RESCHEDULED, new_booking_id=99)
    seen = await journal.get(K)
    assert seen is not None
    assert (seen.state, seen.new_booking_id, seen.decided_by, seen.terms) == (
        AttemptState.RESCHEDULED,
        99,
        Decider.ANSWER,
        TERMS,
    )
    assert await claim(journal) is None
    assert await journal.results_among(ROOT, [99, 100]) == {99: 11}
    forced = await claim(journal, force=True)
    assert forced is not None
    assert forced.attempt == 3


async def test_an_outcome_is_recorded_only_against_its_own_attempt(journal: Journal) -> None:
    first = await claim(journal)
    assert first is not None
    assert await journal.record_outcome(first, AttemptState.UNKNOWN)
    assert await journal.record_verdict(K, 1, AttemptState.REFUSED)  # reconciled: it did not happen
    second = await claim(journal)
    assert second is not None
    assert not await journal.record_outcome(first, AttemptState.RESCHEDULED, new_booking_id=50)  # stale
    entry = await journal.get(K)
    assert entry is not None
    assert (entry.attempt, entry.state) == (2, AttemptState.IN_FLIGHT)
    assert await journal.results_among(ROOT, [50]) == {}


async def test_a_verdict_lands_only_on_the_attempt_it_reconciled_and_never_on_a_live_claim(
    journal: Journal,
) -> None:
    first = await claim(journal)
    assert first is not None
    # Finding 1: a reconciliation must not record "refused" over a claim in flight.
    assert not await journal.record_verdict(K, 1, AttemptState.REFUSED)
    assert await journal.record_outcome(first, AttemptState.UNKNOWN)
    newer = await claim(journal, force=True)  # a newer attempt meanwhile (finding 2)
    assert newer is not None
    assert await journal.record_outcome(newer, AttemptState.UNKNOWN)
    assert not await journal.record_verdict(K, 1, AttemptState.REFUSED)  # about the old attempt: stale
    assert await journal.record_verdict(K, 2, AttemptState.RESCHEDULED, new_booking_id=77)
    entry = await journal.get(K)
    assert entry is not None
    assert (entry.state, entry.new_booking_id, entry.decided_by) == (
        AttemptState.RESCHEDULED,
        77,
        Decider.RECONCILIATION,
    )


async def test_a_verdict_never_names_another_bookings_recorded_reschedule(journal: Journal) -> None:
    other = Key(ROOT, 12)
    taken = await claim(journal, other)
    assert taken is not None
    assert await journal.record_outcome(taken, AttemptState.RESCHEDULED, new_booking_id=77)
    mine = await claim(journal)
    assert mine is not None
    assert await journal.record_outcome(mine, AttemptState.UNKNOWN)
    assert not await journal.record_verdict(K, 1, AttemptState.RESCHEDULED, new_booking_id=77)


async def test_a_verdict_about_a_booking_never_attempted_is_recorded_only_when_the_journal_is_empty(
    journal: Journal,
) -> None:
    assert await journal.record_verdict(K, 0, AttemptState.REFUSED)
    assert not await journal.record_verdict(K, 0, AttemptState.REFUSED)  # no longer empty
    assert not await journal.record_verdict(Key(ROOT, 12), -1, AttemptState.REFUSED)  # never recorded


async def test_the_users_answer_is_refused_while_an_attempt_is_in_flight(journal: Journal) -> None:
    first = await claim(journal)
    assert first is not None
    assert await journal.resolve(K, rescheduled_into=None) is None
    assert await journal.record_outcome(first, AttemptState.UNKNOWN)
    resolved = await journal.resolve(K, rescheduled_into=None)
    assert resolved is not None
    assert (resolved.state, resolved.decided_by) == (AttemptState.REFUSED, Decider.USER)
    assert await claim(journal) is not None  # "it did not happen": the next attempt may send


async def test_the_user_may_say_which_twin_a_booking_belongs_to(journal: Journal) -> None:
    twin = Key(ROOT, 12)
    for key in (K, twin):
        entry = await claim(journal, key)
        assert entry is not None
        assert await journal.record_outcome(entry, AttemptState.UNKNOWN)
    assert await journal.record_verdict(twin, 1, AttemptState.RESCHEDULED, new_booking_id=77)
    assert await journal.resolve(K, rescheduled_into=77) is not None  # the user says: 11's, not 12's
    assert await journal.results_among(ROOT, [77]) == {77: 11}
    displaced = await journal.get(twin)
    assert displaced is not None
    assert displaced.effective_state is AttemptState.UNKNOWN  # reconciled again before anything is sent


async def test_keys_are_per_api_root(journal: Journal) -> None:
    # Finding 11: the same booking id at another server is another booking.
    here = await claim(journal, Key(ROOT, 101))
    assert here is not None
    assert await journal.record_outcome(here, AttemptState.RESCHEDULED, new_booking_id=500)
    assert await claim(journal, Key("http://127.0.0.1:8080", 101)) is not None


async def test_twins_are_found_by_their_terms(journal: Journal) -> None:
    for booking_id in (11, 12, 13):
        entry = await claim(journal, Key(ROOT, booking_id))
        assert entry is not None
        if booking_id != 13:
            assert await journal.record_outcome(entry, AttemptState.UNKNOWN)
    unknown_terms = await journal.claim(Key(ROOT, 14), force=False, settle=1.0)  # checks off: no terms
    assert unknown_terms.entry is not None
    found = {e.booking_id for e in await journal.outstanding(ROOT, [TERMS.fingerprint])}
    assert found == {11, 12, 13}
    assert {e.booking_id for e in await journal.outstanding(ROOT, [None])} == {14}
    await journal.learn_terms(Key(ROOT, 14), 1, TERMS)
    assert {e.booking_id for e in await journal.outstanding(ROOT, [TERMS.fingerprint])} == {11, 12, 13, 14}


async def test_the_servers_offset_is_kept(journal: Journal) -> None:
    assert await journal.server_offset(ROOT) is None
    await journal.learn_server_offset(ROOT, 60)
    assert await journal.server_offset(ROOT) == 60


# --- clocks -----------------------------------------------------------------------------------


async def test_an_attempts_age_is_measured_on_a_clock_that_never_steps(
    journal: Journal, clock: ManualClocks
) -> None:
    entry = await claim(journal)
    assert entry is not None
    assert await journal.record_outcome(entry, AttemptState.UNKNOWN)
    clock.step_wall(3600)  # a forward step of the wall clock: not an hour of waiting
    seen = await journal.get(K)
    assert seen is not None
    assert not seen.settled
    clock.advance(121)
    seen = await journal.get(K)
    assert seen is not None
    assert seen.settled
    assert seen.retry_after == 0


async def test_a_live_owner_keeps_its_claim_however_long_and_whatever_the_clock(
    journal: Journal, clock: ManualClocks
) -> None:
    # Finding 3: no lease. Days pass and the clock steps: a live owner's claim is its own.
    assert await claim(journal) is not None
    clock.advance(7 * 24 * 3600)
    clock.step_wall(-3600)
    entry = await journal.get(K)
    assert entry is not None
    assert entry.effective_state is AttemptState.IN_FLIGHT
    assert await claim(journal, force=True) is None


# --- what a journal forgets -------------------------------------------------------------------


async def test_what_a_journal_forgets_and_when(tmp_path: Path, clock: ManualClocks) -> None:
    for journal in (
        MemoryJournal(
            clocks=clock.clocks(), keep_refused=timedelta(hours=1), keep_rescheduled=timedelta(days=2)
        ),
        SqliteJournal(
            tmp_path / "j.sqlite3",
            clocks=clock.clocks(),
            keep_refused=timedelta(hours=1),
            keep_rescheduled=timedelta(days=2),
        ),
    ):
        states = [AttemptState.REFUSED, AttemptState.RESCHEDULED, AttemptState.UNKNOWN]
        for booking_id, state in enumerate(states, 1):
            entry = await claim(journal, Key(ROOT, booking_id))
            assert entry is not None
            new = 90 + booking_id if state is AttemptState.RESCHEDULED else None
            assert await journal.record_outcome(entry, state, new_booking_id=new)
        assert await claim(journal, Key(ROOT, 9)) is not None  # in flight
        clock.advance(2 * 3600)
        assert await journal.forget_old() == 1  # the refusal
        clock.advance(3 * 24 * 3600)
        assert await journal.forget_old() == 1  # the reschedule, and its result with it
        assert await journal.results_among(ROOT, [92]) == {}
        clock.advance(365 * 24 * 3600)
        assert await journal.forget_old() == 0  # unknown and in flight: never
        assert {e.booking_id for e in await journal.entries(ROOT)} == {3, 9}
        await journal.aclose()


async def test_a_memory_journal_stays_bounded_and_drops_refused_and_rescheduled_entries_first() -> None:
    journal = MemoryJournal(max_entries=10)
    unknown = await claim(journal, Key(ROOT, 1))
    assert unknown is not None
    assert await journal.record_outcome(unknown, AttemptState.UNKNOWN)
    for booking_id in range(2, 30):
        entry = await claim(journal, Key(ROOT, booking_id))
        assert entry is not None
        assert await journal.record_outcome(entry, AttemptState.REFUSED)
    entries = await journal.entries()
    assert len(entries) == 10
    assert entries[0].booking_id == 1  # the unknown one is kept, whatever its age


# --- sqlite: durable, shared, private ---------------------------------------------------------


async def test_a_claim_is_committed_before_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        assert await claim(journal) is not None
        with sqlite3.connect(path) as other:  # another process's view
            rows = other.execute("SELECT state, attempt FROM attempts WHERE booking_id = 11").fetchall()
        assert rows == [("in_flight", 1)]
    finally:
        await journal.aclose()


async def assert_given_back_as_refused(journal: SqliteJournal) -> None:
    """The first claim of ``K`` was given back: refused, no longer live, and the next claim gets it."""
    entry = await journal.get(K)
    assert entry is not None
    assert (entry.attempt, entry.state) == (1, AttemptState.REFUSED)
    assert not journal._live
    again = await claim(journal)
    assert again is not None
    assert again.attempt == 2


async def test_a_claim_whose_caller_is_cancelled_on_its_way_is_given_back_as_refused(tmp_path: Path) -> None:
    # The caller stops waiting while its claim waits for the file (another process's transaction
    # holds the write lock); the claim lands all the same. Nothing was sent, so it is given back:
    # left in flight under this live process, it would hold every later call back.
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        assert await journal.get(K) is None  # opened
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # the journal's thread waits for this lock
            caller = asyncio.ensure_future(claim(journal))
            await asyncio.sleep(0)  # its claim is queued
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller
        finally:
            other.execute("ROLLBACK")
            other.close()
        await journal.flush()
        await assert_given_back_as_refused(journal)
        assert journal.claims_survive_cancellation  # so the guard awaits its claims directly
    finally:
        await journal.aclose()


async def test_a_claim_whose_caller_is_cancelled_once_its_answer_came_is_given_back(tmp_path: Path) -> None:
    # The claim's answer has come, but its caller is cancelled before it runs again: the answer is
    # lost to the caller (asyncio raises CancelledError in it), so the journal gives the claim back.
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    started, release = threading.Event(), threading.Event()

    def hold(connection: sqlite3.Connection) -> None:
        started.set()
        release.wait(60)

    try:
        assert await journal.get(K) is None  # opened
        held = await journal._writer.submit(hold)  # white box: the journal's thread is busy
        await asyncio.to_thread(started.wait, 60)
        ahead = await journal._writer.submit(lambda connection: None)  # answered just before the claim
        caller = asyncio.ensure_future(claim(journal))
        await asyncio.sleep(0)  # the claim is asked for
        await eventually(lambda: not journal._writer._gathered)  # both queued: committed together
        release.set()
        await held
        await ahead  # the claim's answer is set; its caller has not run since
        assert not caller.done()
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        await assert_given_back_as_refused(journal)
    finally:
        release.set()
        await journal.aclose()


def test_a_claim_whose_event_loop_closed_before_its_answer_is_given_back(tmp_path: Path) -> None:
    # Nobody is left to hear of the claim (its caller cancelled, its loop closed): the writer's
    # thread gives it back itself, and the next loop finds it refused and free.
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    other = sqlite3.connect(path, isolation_level=None)
    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(journal.get(K)) is None  # opened

        async def ask_then_leave() -> None:
            caller = asyncio.ensure_future(claim(journal))
            await asyncio.sleep(0)  # asked for
            await asyncio.sleep(0)  # handed to the journal's thread, which waits for the lock
            caller.cancel()
            await asyncio.wait([caller])

        other.execute("BEGIN IMMEDIATE")
        first.run_until_complete(ask_then_leave())
    finally:
        first.close()
        other.execute("ROLLBACK")
        other.close()

    async def afterwards() -> None:
        try:
            for _ in range(500):  # the claim is committed, then given back: look until it is
                entry = await journal.get(K)
                assert entry is not None
                if entry.state is not AttemptState.IN_FLIGHT:
                    break
                await asyncio.sleep(0.01)
            assert (entry.attempt, entry.state) == (1, AttemptState.REFUSED)
            assert not journal._live
            again = await claim(journal)
            assert again is not None
            assert again.attempt == 2
        finally:
            await journal.aclose()

    asyncio.run(afterwards())


async def test_a_run_of_outcomes_records_each_owners_own_attempt_and_only_those(tmp_path: Path) -> None:
    # Asked for together, they are written in one statement (padded with copies of its last row):
    # a stale outcome among them is refused alone, and the others' new bookings are recorded.
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        entries = await asyncio.gather(*(claim(journal, Key(ROOT, n)) for n in range(1, 6)))
        assert all(entries)
        fresh = [e for e in entries if e is not None]
        stale = attrs.evolve(fresh[-1], attempt=fresh[-1].attempt + 1)
        recorded = await asyncio.gather(
            *(
                journal.record_outcome(e, AttemptState.RESCHEDULED, new_booking_id=100 + e.booking_id)
                for e in [*fresh[:-1], stale]
            )
        )
        assert recorded == [True, True, True, True, False]
        assert await journal.results_among(ROOT, range(100, 106)) == {101: 1, 102: 2, 103: 3, 104: 4}
        last = await journal.get(Key(ROOT, 5))
        assert last is not None
        assert (last.attempt, last.state) == (1, AttemptState.IN_FLIGHT)
        assert await journal.record_outcome(fresh[-1], AttemptState.REFUSED)
    finally:
        await journal.aclose()


async def test_looking_entries_up_searches_the_primary_key_never_scans_the_table(tmp_path: Path) -> None:
    # A scan made every claim cost more with every booking the journal keeps (90 days of them).
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        await journal.get_many([Key(ROOT, n) for n in range(1, 300)])
        assert await claim(journal) is not None
    finally:
        await journal.aclose()
    with sqlite3.connect(path) as connection:
        for size in (1, 4, 256):
            statement = _select_ids(size)
            plan = connection.execute(f"EXPLAIN QUERY PLAN {statement}", [ROOT, *range(size)]).fetchall()
            details = " ".join(row[-1] for row in plan)
            primary_key = "USING INDEX sqlite_autoindex_attempts_1 (api_root=? AND booking_id=?)"
            assert f"SEARCH attempts {primary_key}" in details, details
            assert "SCAN attempts" not in details, details


async def test_two_sqlite_journals_on_one_file_grant_each_booking_once(tmp_path: Path) -> None:
    first, second = SqliteJournal(tmp_path / "j.sqlite3"), SqliteJournal(tmp_path / "j.sqlite3")
    try:
        claims = await asyncio.gather(
            *(
                journal.claim(Key(ROOT, n), force=False, settle=1.0)
                for n in range(1, 51)
                for journal in (first, second)
            )
        )
        granted = [c.entry.booking_id for c in claims if c.granted and c.entry is not None]
        assert sorted(granted) == list(range(1, 51))  # each once, by one of the two owners
    finally:
        await first.aclose()
        await second.aclose()


async def test_the_journals_folder_and_files_are_private(tmp_path: Path) -> None:
    folder = tmp_path / "state" / "aw-async"
    journal = SqliteJournal(folder / "journal.sqlite3")
    try:
        assert await claim(journal) is not None
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        files = sorted(p.name for p in folder.iterdir())
        assert "journal.sqlite3" in files
        assert "journal.sqlite3.owners" in files
        for name in files:
            assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    finally:
        await journal.aclose()


async def test_a_journal_that_cannot_be_made_is_a_journal_error_and_nothing_is_claimed(
    tmp_path: Path,
) -> None:
    # Finding 13: a folder whose parent is a file gave NotADirectoryError.
    (tmp_path / "file").write_text("not a folder")
    journal = SqliteJournal(tmp_path / "file" / "journal.sqlite3")
    with pytest.raises(JournalError, match=r"journal\.sqlite3"):
        await claim(journal)
    await journal.aclose()


async def test_a_file_that_is_no_journal_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    journal = SqliteJournal(path)
    with pytest.raises(JournalError):
        await claim(journal)
    await journal.aclose()


async def test_a_newer_schema_or_an_older_journal_is_refused_never_used(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite3"
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version = 99")
    legacy = tmp_path / "legacy.sqlite3"
    with sqlite3.connect(legacy) as connection:
        connection.execute("CREATE TABLE reschedules (booking_id INTEGER PRIMARY KEY, state TEXT)")
    for path, message in ((newer, "newer than this aw-async"), (legacy, "earlier aw-async")):
        journal = SqliteJournal(path)
        with pytest.raises(JournalError, match=message):
            await claim(journal)
        await journal.aclose()


async def test_a_row_this_version_cannot_read_counts_as_unknown_never_as_free(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        entry = await claim(journal)
        assert entry is not None
        assert await journal.record_outcome(entry, AttemptState.REFUSED)
        await journal.flush()
        with sqlite3.connect(path) as other:  # a later version's state, or a damaged row
            other.execute("UPDATE attempts SET state = 'archived', started_at = 'soon' WHERE booking_id = 11")
        seen = await journal.get(K)
        assert seen is not None
        assert not seen.readable
        assert seen.effective_state is AttemptState.UNKNOWN
        assert await claim(journal) is None  # never free
        assert await journal.resolve(K, rescheduled_into=None) is not None  # the user can decide it
        assert await claim(journal) is not None
    finally:
        await journal.aclose()


async def test_an_attempt_this_process_no_longer_runs_is_unknown(tmp_path: Path) -> None:
    # Its outcome could not be recorded (the journal failed): the attempt may have been sent.
    journal = SqliteJournal(tmp_path / "j.sqlite3")
    try:
        entry = await claim(journal)
        assert entry is not None
        journal._live.discard((K, entry.attempt))  # what a failed outcome write leaves behind
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.UNKNOWN
    finally:
        await journal.aclose()


# --- sqlite: owners are processes, alive while they live --------------------------------------


async def _owner(path: Path, *prefix: str) -> tuple[asyncio.subprocess.Process, str]:
    """A process that claims booking 11 and holds it; its owner token."""
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        "-m",
        "tests.journal.journal_owner",
        str(path),
        ROOT,
        "11",
        cwd=ROOT_DIR,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode().split()
    assert line[0] == "claimed", line
    return process, line[1]


async def test_an_owner_killed_with_sigkill_is_gone_and_its_attempt_unknown(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    process, owner = await _owner(path)
    journal = SqliteJournal(path)
    try:
        seen = await journal.get(K)
        assert seen is not None
        assert (seen.owner, seen.effective_state) == (owner, AttemptState.IN_FLIGHT)
        process.kill()
        await process.wait()
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.UNKNOWN
        assert await claim(journal) is None  # unknown: reconcile first
    finally:
        await journal.aclose()


async def test_an_owner_stopped_with_sigstop_keeps_its_claim(tmp_path: Path, clock: ManualClocks) -> None:
    # Finding 3: a process stopped longer than any lease (Ctrl-Z, a suspended laptop) is alive.
    path = tmp_path / "j.sqlite3"
    process, _ = await _owner(path)
    journal = SqliteJournal(path, clocks=clock.clocks())
    try:
        process.send_signal(signal.SIGSTOP)
        clock.advance(3600)
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.IN_FLIGHT
        assert await claim(journal, force=True) is None
    finally:
        process.send_signal(signal.SIGCONT)
        process.kill()
        await process.wait()
        await journal.aclose()


def _can_unshare() -> str | None:
    if os.geteuid() != 0:
        return "a PID namespace of its own needs root (unshare)"
    if not Path("/usr/bin/unshare").exists():
        return "unshare is not installed"
    return None


@pytest.mark.skipif(_can_unshare() is not None, reason=str(_can_unshare()))
async def test_an_owner_in_another_pid_namespace_is_alive_until_it_dies(tmp_path: Path) -> None:
    # Finding 4: a worker in a container (its own PID namespace, the same file system).
    path = tmp_path / "j.sqlite3"
    process, owner = await _owner(path, "unshare", "--pid", "--fork", "--kill-child", "--mount-proc")
    journal = SqliteJournal(path)
    try:
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.IN_FLIGHT
        assert owner.endswith(":1")  # pid 1 in its namespace: meaningless here, and not asked
        process.kill()
        await process.wait()
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.UNKNOWN
    finally:
        await journal.aclose()


async def test_a_live_pid_does_not_keep_a_dead_owner_alive(tmp_path: Path) -> None:
    # Finding 4, the other way: an owner whose pid another process now has (here: this one).
    path = tmp_path / "j.sqlite3"
    journal = SqliteJournal(path)
    try:
        assert await claim(journal) is not None
        await journal.flush()
        with sqlite3.connect(path) as other:
            other.execute(
                "UPDATE attempts SET owner = ? WHERE booking_id = 11", (f"12345@host:{os.getpid()}",)
            )
        seen = await journal.get(K)
        assert seen is not None
        assert seen.effective_state is AttemptState.UNKNOWN
    finally:
        await journal.aclose()


@pytest.mark.parametrize("spelling", ["~/journals/aw.sqlite3", Path("~/journals/aw.sqlite3")])
async def test_a_journal_path_that_starts_with_a_tilde_is_in_the_home_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str | Path
) -> None:
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    async with AdultWorkClient("t", journal=spelling) as aw:
        assert isinstance(aw.journal, SqliteJournal)
        assert aw.journal.path == home / "journals" / "aw.sqlite3"
        await aw.journal.get(Key(aw.phonechat.api_root, 1))  # opened: the file is made where it says
    assert (home / "journals" / "aw.sqlite3").is_file()
    assert not (elsewhere / "~").exists()  # never a folder named "~"
