"""PostgresJournal on a real PostgreSQL: claims racing across owners, liveness from database
sessions, the schema, what it forgets, terms and offsets. (Every transition against the rules:
test_postgres_model.py; faults and grouping: test_postgres_faults.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from aw_async.errors import JournalError
from aw_async.journal import AttemptState, JournalEntry, PostgresJournal, Terms

from .. import _pg_support
from .._pg_support import ROOT, SETTLE, key, owner_pid, session_gone, sql

journal = _pg_support.journal
other = _pg_support.other

# --- claims, outcomes and liveness ------------------------------------------------------------------


async def test_a_claim_is_granted_once_and_its_outcome_is_recorded(journal: PostgresJournal) -> None:
    claim = await journal.claim(key(1), force=False, settle=SETTLE)
    assert claim.granted
    assert claim.entry is not None
    entry = claim.entry
    assert (entry.state, entry.attempt, entry.owner, entry.owner_alive) == (
        AttemptState.IN_FLIGHT,
        1,
        journal.owner,
        True,
    )
    again = await journal.claim(key(1), force=True, settle=SETTLE)
    assert not again.granted
    assert again.entry == entry
    assert await journal.record_outcome(entry, AttemptState.RESCHEDULED, new_booking_id=70)
    done = await journal.get(key(1))
    assert done is not None
    assert (done.state, done.new_booking_id, done.started_at) == (
        AttemptState.RESCHEDULED,
        70,
        entry.started_at,
    )
    assert await journal.results_among(ROOT, [70, 71]) == {70: 1}
    assert not (await journal.claim(key(1), force=False, settle=SETTLE)).granted
    forced = await journal.claim(key(1), force=True, settle=SETTLE)
    assert forced.granted
    assert forced.entry is not None
    assert forced.entry.attempt == 2


async def test_two_owners_racing_for_one_booking_get_one_claim(
    journal: PostgresJournal, other: PostgresJournal
) -> None:
    for n in range(1, 41):
        first, second = await asyncio.gather(
            journal.claim(key(n), force=True, settle=SETTLE), other.claim(key(n), force=True, settle=SETTLE)
        )
        assert first.granted != second.granted, n
        loser = second if first.granted else first
        assert loser.entry is not None
        assert loser.entry.effective_state is AttemptState.IN_FLIGHT


async def test_two_owners_claiming_many_bookings_at_once_get_each_once(
    journal: PostgresJournal, other: PostgresJournal
) -> None:
    ours = [journal.claim(key(n), force=True, settle=SETTLE) for n in range(1, 301)]
    theirs = [other.claim(key(n), force=True, settle=SETTLE) for n in range(300, 0, -1)]
    answers = await asyncio.gather(*ours, *theirs)  # two grouped statements racing over the same rows
    granted = sorted(a.entry.booking_id for a in answers if a.granted and a.entry is not None)
    assert granted == list(range(1, 301))


async def test_an_owner_records_only_its_own_attempt(
    journal: PostgresJournal, other: PostgresJournal
) -> None:
    claim = await journal.claim(key(1), force=False, settle=SETTLE)
    assert claim.entry is not None
    await other.get(key(1))  # the other journal is open
    assert not await other.record_outcome(claim.entry, AttemptState.REFUSED)
    assert await other.renew(claim.entry) is None
    assert not await other.still_holds(claim.entry)
    assert (await journal.get(key(1))).state is AttemptState.IN_FLIGHT  # type: ignore[union-attr]


async def test_an_owner_whose_journal_is_closed_is_gone_and_its_attempt_unknown(
    postgres_dsn: str, other: PostgresJournal
) -> None:
    first = PostgresJournal(postgres_dsn)
    claim = await first.claim(key(1), force=False, settle=SETTLE)
    assert claim.entry is not None
    seen = await other.get(key(1))
    assert seen is not None
    assert seen.effective_state is AttemptState.IN_FLIGHT
    await first.aclose()
    gone = await other.get(key(1))
    assert gone is not None
    assert gone.owner_alive is False
    assert gone.effective_state is AttemptState.UNKNOWN
    assert not (await other.claim(key(1), force=False, settle=SETTLE)).granted  # unknown: reconcile first
    assert await other.record_verdict(key(1), 1, AttemptState.REFUSED)
    assert (await other.claim(key(1), force=False, settle=SETTLE)).granted


async def test_an_owner_whose_backend_is_terminated_is_gone_and_takes_a_new_token(
    postgres_dsn: str, journal: PostgresJournal, other: PostgresJournal
) -> None:
    claim = await journal.claim(key(1), force=False, settle=SETTLE)
    assert claim.entry is not None
    assert await journal.still_holds(claim.entry)
    old = claim.entry.owner
    assert old is not None
    pid = await owner_pid(postgres_dsn, old)
    await sql(postgres_dsn, "SELECT pg_terminate_backend($1)", pid)
    await session_gone(postgres_dsn, pid)
    seen = await other.get(key(1))
    assert seen is not None
    assert seen.effective_state is AttemptState.UNKNOWN
    assert not await journal.still_holds(claim.entry)  # its POST must not leave
    next_claim = await journal.claim(key(2), force=False, settle=SETTLE)
    assert next_claim.entry is not None
    assert next_claim.entry.owner not in (None, old)
    mine = await journal.get(key(1))  # an orphan, to its own journal too: never silently live again
    assert mine is not None
    assert mine.effective_state is AttemptState.UNKNOWN
    assert not await journal.record_outcome(claim.entry, AttemptState.RESCHEDULED, new_booking_id=9)


_OWNER_SCRIPT = """
import asyncio, sys
from aw_async.journal import Key, PostgresJournal

async def main():
    journal = PostgresJournal(sys.argv[1])
    claim = await journal.claim(Key(sys.argv[2], 1), force=False, settle=60.0)
    print(claim.entry.owner, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_stopped_owner_keeps_its_claim_and_a_killed_one_loses_it(
    postgres_dsn: str, journal: PostgresJournal
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(_OWNER_SCRIPT),
        postgres_dsn,
        ROOT,
        stdout=asyncio.subprocess.PIPE,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))),
    )
    try:
        assert process.stdout is not None
        token = (await process.stdout.readline()).decode().strip()
        assert token.startswith("pg:")
        process.send_signal(signal.SIGSTOP)  # stopped, not dead: its session lives
        seen = await journal.get(key(1))
        assert seen is not None
        assert seen.owner == token
        assert seen.effective_state is AttemptState.IN_FLIGHT
        assert not (await journal.claim(key(1), force=True, settle=SETTLE)).granted
        pid = await owner_pid(postgres_dsn, token)
        process.kill()
        await process.wait()
        await session_gone(postgres_dsn, pid)
        gone = await journal.get(key(1))
        assert gone is not None
        assert gone.effective_state is AttemptState.UNKNOWN
        assert (await journal.claim(key(1), force=True, settle=SETTLE)).granted
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_an_outcome_recorded_without_awaiting_is_committed_before_flush_returns(
    postgres_dsn: str, journal: PostgresJournal, other: PostgresJournal
) -> None:
    claims = await asyncio.gather(*(journal.claim(key(n), force=False, settle=SETTLE) for n in range(1, 21)))
    for n, claim in enumerate(claims, 1):
        assert claim.entry is not None
        assert journal.record_outcome_nowait(claim.entry, AttemptState.RESCHEDULED, new_booking_id=1000 + n)
    await journal.flush()
    rows = await sql(postgres_dsn, "SELECT count(*) FROM aw_async.attempts WHERE state = 'rescheduled'")
    assert rows[0][0] == 20
    assert len(await other.results_among(ROOT, range(1001, 1021))) == 20


def test_a_journal_works_in_loops_run_one_after_another(postgres_dsn: str) -> None:
    shared = PostgresJournal(postgres_dsn)

    async def claim(n: int) -> JournalEntry:
        claim = await shared.claim(key(n), force=False, settle=SETTLE)
        assert claim.granted
        assert claim.entry is not None
        assert shared.record_outcome_nowait(claim.entry, AttemptState.REFUSED)
        return claim.entry

    first = asyncio.run(claim(1))
    second = asyncio.run(claim(2))  # a new loop: a new pool and owner; the old loop's were closed
    assert first.owner != second.owner

    async def read() -> list[JournalEntry]:
        try:
            return await shared.entries()
        finally:
            await shared.aclose()

    assert [e.state for e in asyncio.run(read())] == [AttemptState.REFUSED] * 2  # committed at loop end


# --- the schema ------------------------------------------------------------------------------------


async def test_journals_starting_together_create_the_schema_once(postgres_dsn: str) -> None:
    journals = [PostgresJournal(postgres_dsn, schema="shared_start") for _ in range(6)]
    try:
        claims = await asyncio.gather(
            *(j.claim(key(n), force=False, settle=SETTLE) for n, j in enumerate(journals))
        )
        assert all(c.granted for c in claims)
    finally:
        for j in journals:
            await j.aclose()
    rows = await sql(postgres_dsn, "SELECT version FROM shared_start.schema_version")
    assert [r[0] for r in rows] == [1]


async def test_a_schema_newer_than_this_version_is_refused(postgres_dsn: str) -> None:
    first = PostgresJournal(postgres_dsn)
    await first.get(key(1))
    await first.aclose()
    await sql(postgres_dsn, "UPDATE aw_async.schema_version SET version = 99")
    newer = PostgresJournal(postgres_dsn)
    with pytest.raises(JournalError, match="version 99, newer") as raised:
        await newer.claim(key(1), force=False, settle=SETTLE)
    await newer.aclose()
    assert "upgrade aw-async" in str(raised.value)


async def test_a_schema_holding_other_tables_is_refused(postgres_dsn: str) -> None:
    await sql(postgres_dsn, "CREATE SCHEMA theirs; CREATE TABLE theirs.attempts (x int)")
    journal = PostgresJournal(postgres_dsn, schema="theirs")
    with pytest.raises(JournalError, match="not a journal"):
        await journal.get(key(1))
    await journal.aclose()


def test_without_asyncpg_the_journal_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(JournalError, match=r"pip install 'aw-async\[postgres\]'"):
        PostgresJournal("postgresql://localhost/db")


def test_importing_the_journal_does_not_import_asyncpg() -> None:
    code = "import sys; sys.modules['asyncpg'] = None; import aw_async.journal; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


async def test_what_is_forgotten_and_when(journal: PostgresJournal) -> None:
    for n, state in enumerate(AttemptState, 1):
        claim = await journal.claim(key(n), force=False, settle=SETTLE)
        assert claim.entry is not None
        if state is not AttemptState.IN_FLIGHT:
            new = 100 if state is AttemptState.RESCHEDULED else None
            assert await journal.record_outcome(claim.entry, state, new_booking_id=new)
    now = datetime.now(UTC)
    assert await journal.forget_old() == 0
    assert await journal.forget_old(now + timedelta(days=2)) == 1  # refused: after a day
    assert await journal.results_among(ROOT, [100]) == {100: 2}
    assert await journal.forget_old(now + timedelta(days=91)) == 1  # rescheduled: after 90 days
    assert await journal.results_among(ROOT, [100]) == {}
    assert {e.booking_id: e.state for e in await journal.entries()} == {
        1: AttemptState.IN_FLIGHT,
        4: AttemptState.UNKNOWN,
    }


async def test_terms_twins_in_flight_or_unknown_and_server_offsets(journal: PostgresJournal) -> None:
    terms = Terms(
        user_id=7,
        duration=10,
        credits=Decimal("8E+1"),  # as Terms.of normalises 80: kept as written, not as numeric
        method=1,
        phone_number="01",
        skype_name=None,
        comments="é\x00",
    )
    first = await journal.claim(key(1), force=False, settle=SETTLE, terms=terms)
    second = await journal.claim(key(2), force=False, settle=SETTLE)
    assert first.entry is not None
    assert second.entry is not None
    await journal.learn_terms(key(2), 1, terms)
    twins = await journal.outstanding(ROOT, [terms.fingerprint])
    assert sorted(e.booking_id for e in twins) == [1, 2]
    assert all(e.terms == terms for e in twins)
    assert await journal.outstanding(ROOT, [None]) == []
    assert await journal.server_offset(ROOT) is None
    await journal.learn_server_offset(ROOT, 60)
    await journal.learn_server_offset(ROOT, 0)
    assert await journal.server_offset(ROOT) == 0
