"""Exactly once across processes, crashes and signals: real subprocesses, a real sqlite journal, and
the sandbox counting what it actually did."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from aw_async import AdultWorkClient
from aw_async.journal import AttemptState, SqliteJournal
from aw_async.sandbox import SandboxServer

from .scripted import eventually, past_booking

TOKEN = "process-token"
USER = 51
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxServer]:
    async with SandboxServer() as server:
        server.add_token(TOKEN, user_id=USER)
        server.set_balance(USER, Decimal(100_000))
        for n in range(1, 301):
            # distinct comments: a reconciliation must be able to tell the bookings apart
            booking = past_booking(n, credits="2", comments=f"booking {n}")
            server.add_booking(booking, client_user_id=USER)
        yield server


async def start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "AW_ACCESS_TOKEN": TOKEN},
    )


def worker(sandbox: SandboxServer, journal: Path, ids: range, concurrency: int = 8) -> list[str]:
    return ["-m", "tests.journal_worker", sandbox.url, TOKEN, str(journal), str(concurrency), *map(str, ids)]


def in_flight(journal: Path) -> int:
    """How many attempts the journal file holds in flight (read as another process would)."""
    with sqlite3.connect(journal) as connection:
        (count,) = connection.execute("SELECT count(*) FROM reschedules WHERE state = 'in_flight'").fetchone()
    return int(count)


def counts(sandbox: SandboxServer, ids: range) -> list[int]:
    return [sandbox.reschedule_count(n) for n in ids]


async def test_two_processes_sharing_a_journal_reschedule_each_booking_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    ids = range(1, 101)
    sandbox.faults.latency = 0.005
    first, second = await start(*worker(sandbox, journal, ids)), await start(*worker(sandbox, journal, ids))
    (out1, err1), (out2, err2) = await asyncio.gather(first.communicate(), second.communicate())
    assert (first.returncode, second.returncode) == (0, 0), (err1.decode(), err2.decode())
    assert counts(sandbox, ids) == [1] * 100  # counted on the server's side
    done = [line for out in (out1, out2) for line in out.decode().splitlines() if " ok " in line]
    refused = [
        line for out in (out1, out2) for line in out.decode().splitlines() if "AlreadyRescheduled" in line
    ]
    others = [
        line for out in (out1, out2) for line in out.decode().splitlines() if line not in done + refused
    ]
    assert len(done) == 100, others
    assert len(refused) == 100, others  # each booking: done by one process, refused by the other


async def test_a_batch_killed_with_sigkill_and_run_again_reschedules_each_booking_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.sqlite3"
    ids = range(1, 301)
    sandbox.faults.latency = 0.02  # slow enough to die mid-batch, with POSTs in flight
    process = await start(*worker(sandbox, journal, ids, concurrency=20))
    await eventually(lambda: sum(counts(sandbox, ids)) >= 40 and in_flight(journal) > 0)
    process.kill()  # SIGKILL: no cleanup of any kind
    await process.wait()
    done_before = sum(counts(sandbox, ids))
    assert 0 < done_before < 300
    left = SqliteJournal(journal)
    try:  # what the killed process left: attempts in flight, whose owner is gone
        stranded = [e for e in await left.entries() if e.state is AttemptState.IN_FLIGHT]
    finally:
        await left.aclose()
    assert stranded
    assert all(e.effective_state(datetime.now(UTC)) is AttemptState.UNKNOWN for e in stranded)
    sandbox.faults.latency = 0.0
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(ids, concurrency=20)
        entries = await aw.phonechat.journal.entries()
    assert counts(sandbox, ids) == [1] * 300  # nothing twice, nothing left out
    assert all(o.ok or type(o.error).__name__ == "AlreadyRescheduledError" for o in outcomes), [
        o.error for o in outcomes if not o.ok and type(o.error).__name__ != "AlreadyRescheduledError"
    ]
    assert {e.state for e in entries} == {AttemptState.RESCHEDULED}  # every unknown resolved
    assert {e.new_booking_id for e in entries} == {sandbox.rescheduled(n)[0] for n in ids}


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_the_cli_interrupted_reports_everything_it_started(
    sandbox: SandboxServer, tmp_path: Path, sent: signal.Signals, code: int
) -> None:
    ids = range(1, 301)
    sandbox.faults.latency = 0.05
    process = await start(
        "-m",
        "aw_async",
        "reschedule",
        *map(str, ids),
        "--base-url",
        sandbox.url,
        "--journal",
        str(tmp_path / "journal.sqlite3"),
        "--concurrency",
        "10",
        "--json",
    )
    assert process.stdout is not None
    lines: list[str] = []
    while len(lines) < 5:  # some outcomes are out: the run is well under way
        lines.append((await process.stdout.readline()).decode())
    process.send_signal(sent)
    rest, err = await process.communicate()
    lines += rest.decode().splitlines()
    assert process.returncode == code, err.decode()
    reported = [json.loads(line) for line in lines if line.strip()]
    ok = {o["booking_id"] for o in reported if o["ok"]}
    unknown = {
        o["booking_id"] for o in reported if not o["ok"] and o["error"]["type"] == "OutcomeUnknownError"
    }
    rescheduled = {n for n in ids if sandbox.reschedule_count(n)}
    assert all(sandbox.reschedule_count(n) <= 1 for n in ids)
    assert ok <= rescheduled <= ok | unknown  # stdout and the server agree
    assert len(rescheduled) < 300  # it did stop
    assert "not started" in err.decode()
