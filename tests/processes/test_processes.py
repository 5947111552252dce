"""Exactly once across processes, crashes and signals: real subprocesses, a real sqlite journal, and
the sandbox counting what it actually did.

A settle window (minutes) is not waited out in real time: :func:`let_time_pass` moves the stored
start of the journal's attempts back on the host's clock, which is what waiting does.

Each test starts Python processes, so the default run keeps one representative of each kind (two
processes sharing a journal; a batch interrupted by a signal) and the rest run under ``-m slow``
(in .ci/run); the journal's own rules across owners run in-process in tests/journal/."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from aw_async import AdultWorkClient
from aw_async.errors import OutcomeUnknownError
from aw_async.journal import AttemptState, SqliteJournal
from aw_async.journal._rules import settle_seconds
from aw_async.sandbox import SandboxServer

from ..scripted import eventually, past_booking

TOKEN = "process-token"
USER = 51
ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 5.0


def bookings(server: SandboxServer) -> None:
    for n in range(1, 301):
        # distinct comments: a reconciliation can tell the bookings apart
        server.add_booking(past_booking(n, credits="2", comments=f"booking {n}"), client_user_id=USER)
    for n in range(401, 421):  # twins: a weekly booking with one performer
        server.add_booking(past_booking(n, credits="2", comments="weekly"), client_user_id=USER)


pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, balance=100_000, seed=bookings)


_started: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _end_every_process() -> AsyncIterator[None]:
    """Every process a test started is killed when the test ends, failing or not (one it ended
    itself is left as it is)."""
    yield
    while _started:
        process = _started.pop()
        if process.returncode is None:
            process.kill()  # SIGSTOPped too: SIGKILL needs no SIGCONT
            await process.wait()


async def start(
    *args: str, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        *prefix,
        sys.executable,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "AW_ACCESS_TOKEN": TOKEN, **(env or {})},
    )
    _started.append(process)
    return process


def worker(sandbox: SandboxServer, journal: Path, ids: range | list[int], concurrency: int = 8) -> list[str]:
    return [
        "-m",
        "tests.processes.journal_worker",
        sandbox.url,
        TOKEN,
        str(journal),
        str(concurrency),
        *map(str, ids),
    ]


def in_flight(journal: Path) -> int:
    """How many attempts the journal file holds in flight (read as another process would; 0 before
    the file or its schema exists)."""
    try:
        with sqlite3.connect(f"file:{journal}?mode=ro", uri=True) as connection:
            query = "SELECT count(*) FROM attempts WHERE state = 'in_flight'"
            (count,) = connection.execute(query).fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(count)


def let_time_pass(journal: Path, seconds: float) -> None:
    """Age every attempt of ``journal`` by ``seconds`` on the host's clock (waiting, without the wait)."""
    with sqlite3.connect(journal) as connection:
        connection.execute("UPDATE attempts SET started_elapsed = started_elapsed - ?", (seconds,))


def counts(sandbox: SandboxServer, ids: range | list[int]) -> list[int]:
    return [sandbox.reschedule_count(n) for n in ids]


def lines(output: bytes) -> list[str]:
    return output.decode().splitlines()


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
    every = lines(out1) + lines(out2)
    done = [line for line in every if " ok " in line]
    refused = [line for line in every if "AlreadyRescheduled" in line or "InFlightElsewhere" in line]
    assert len(done) == 100, every
    assert len(done) + len(refused) == 200, every  # each booking: done by one, refused by the other


@pytest.mark.slow
async def test_two_processes_reconciling_one_unknown_booking_send_it_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Findings 1 and 2: both reconcile; the first claims and POSTs; the second must neither record
    # "refused" over that claim nor send. Three runs of three processes.
    journal = tmp_path / "journal.sqlite3"
    for booking_id in (11, 12, 13):
        sandbox.faults.add("reset", method="POST", when="before")  # lost, and never processed
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal, timeout=TIMEOUT) as aw:
            with pytest.raises(OutcomeUnknownError):
                await aw.phonechat.reschedule_made_booking(booking_id)
        let_time_pass(journal, settle_seconds(TIMEOUT))
        sandbox.faults.latency = 0.05  # the three overlap
        processes = [await start(*worker(sandbox, journal, [booking_id])) for _ in range(3)]
        results = await asyncio.gather(*(p.communicate() for p in processes))
        sandbox.faults.latency = 0.0
        assert [p.returncode for p in processes] == [0, 0, 0], [err.decode() for _, err in results]
        assert sandbox.reschedule_count(booking_id) == 1, [out.decode() for out, _ in results]


@pytest.mark.slow
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
    assert 0 < sum(counts(sandbox, ids)) < 300
    left = SqliteJournal(journal)
    try:  # what the killed process left: attempts in flight, whose owner is gone
        stranded = await left.entries(states=[AttemptState.UNKNOWN])
        assert stranded
        assert all(e.state is AttemptState.IN_FLIGHT and e.owner_alive is False for e in stranded)
    finally:
        await left.aclose()
    sandbox.faults.latency = 0.0
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as aw:
        # The documented re-run, at once: what happened is found; what may still land is not sent.
        outcomes = await aw.phonechat.reschedule_made_bookings(ids, concurrency=20)
        assert max(counts(sandbox, ids)) == 1
        waiting = [o for o in outcomes if isinstance(o.error, OutcomeUnknownError)]
        assert all(o.error.retry_after for o in waiting if isinstance(o.error, OutcomeUnknownError))
    let_time_pass(journal, 600)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as aw:
        await aw.phonechat.reschedule_made_bookings(ids, concurrency=20)
        entries = await aw.journal.entries(aw.phonechat.api_root)
    assert counts(sandbox, ids) == [1] * 300  # nothing twice, nothing left out
    assert {e.state for e in entries} == {AttemptState.RESCHEDULED}  # every unknown decided
    assert {e.new_booking_id for e in entries} == {sandbox.rescheduled(n)[0] for n in ids}


@pytest.mark.slow
async def test_twins_killed_mid_batch_are_never_sent_twice_and_what_counting_cannot_decide_is_asked(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Finding 5: with identical terms, a crash and the documented re-run sent 18 twice and 11 never.
    journal = tmp_path / "journal.sqlite3"
    ids = list(range(401, 421))
    sandbox.faults.add("delay", method="POST", when="after", seconds=30, times=len(ids))  # processed, held
    process = await start(*worker(sandbox, journal, ids, concurrency=5))
    await eventually(lambda: sum(counts(sandbox, ids)) >= 3)
    process.kill()
    await process.wait()
    sandbox.faults = type(sandbox.faults)()
    let_time_pass(journal, 600)
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, journal=journal) as aw:
        outcomes = await aw.phonechat.reschedule_made_bookings(ids)
        assert max(counts(sandbox, ids)) == 1  # never twice
        asked = [o for o in outcomes if isinstance(o.error, OutcomeUnknownError)]
        for outcome in asked:  # the user looks at the account, and says which is whose
            assert isinstance(outcome.error, OutcomeUnknownError)
            assert outcome.error.candidates
            made = sandbox.rescheduled(outcome.booking_id)
            await aw.phonechat.resolve(outcome.booking_id, rescheduled_into=made[0] if made else None)
        await aw.phonechat.reschedule_made_bookings(ids)
    assert counts(sandbox, ids) == [1] * 20


@pytest.mark.slow
async def test_an_owner_stopped_with_sigstop_keeps_its_claim_and_sends_once_when_continued(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Finding 3: a process stopped (Ctrl-Z, a suspended laptop) is alive; nobody takes its booking.
    journal = tmp_path / "journal.sqlite3"
    sandbox.faults.add("delay", path="MadeBookingDetails", seconds=1.0)  # the owner is between claim and POST
    owner = await start(*worker(sandbox, journal, [7]))
    await eventually(lambda: in_flight(journal) == 1)
    owner.send_signal(signal.SIGSTOP)
    try:
        other = await start(*worker(sandbox, journal, [7]), env={"WORKER_TIMEOUT": "2"})
        out, err = await other.communicate()
        assert other.returncode == 0, err.decode()
        assert lines(out) == ["7 InFlightElsewhereError"]
        assert sandbox.reschedule_count(7) == 0
    finally:
        owner.send_signal(signal.SIGCONT)
    out, _ = await owner.communicate()
    assert lines(out)[0].startswith("7 ok ")
    assert sandbox.reschedule_count(7) == 1


def _no_unshare() -> str | None:
    if os.geteuid() != 0:
        return "its own PID namespace needs root (unshare)"
    if not Path("/usr/bin/unshare").exists():
        return "unshare is not installed"
    return None


@pytest.mark.slow
@pytest.mark.skipif(_no_unshare() is not None, reason=str(_no_unshare()))
async def test_a_worker_in_its_own_pid_namespace_and_one_outside_reschedule_each_booking_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Finding 4: a container with host networking sees other pids, or not at all.
    journal = tmp_path / "journal.sqlite3"
    ids = range(1, 101)
    sandbox.faults.latency = 0.005
    inside = await start(
        *worker(sandbox, journal, ids),
        prefix=("unshare", "--pid", "--uts", "--fork", "--kill-child", "--mount-proc"),
    )
    outside = await start(*worker(sandbox, journal, ids))
    (_, err1), (_, err2) = await asyncio.gather(inside.communicate(), outside.communicate())
    assert (inside.returncode, outside.returncode) == (0, 0), (err1.decode(), err2.decode())
    assert counts(sandbox, ids) == [1] * 100


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.slow
async def test_the_readme_web_example_as_four_workers_reschedules_each_booking_once(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Finding 10: four workers of the README's web backend, no journal= argument (the default, in
    # the state folder they share), eight concurrent clicks on each of 60 bookings.
    ports = [_free_port() for _ in range(4)]
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    workers = [
        await start("-m", "tests.processes.web_worker", str(port), TOKEN, sandbox.url, "-", env=env)
        for port in ports
    ]
    try:
        for process in workers:
            assert process.stdout is not None
            assert (await asyncio.wait_for(process.stdout.readline(), 60)).startswith(b"listening")
        ids = range(1, 61)
        statuses: dict[int, list[int]] = {n: [] for n in ids}
        async with aiohttp.ClientSession() as http:

            async def click(port: int, booking_id: int) -> None:
                async with http.post(f"http://127.0.0.1:{port}/bookings/{booking_id}/reschedule") as answer:
                    await answer.read()
                    statuses[booking_id].append(answer.status)

            await asyncio.gather(*(click(ports[k % 4], n) for n in ids for k in range(8)))
        assert counts(sandbox, ids) == [1] * 60
        assert all(200 in seen for seen in statuses.values())
    finally:
        for process in workers:
            process.kill()
            await process.wait()


@pytest.mark.slow
async def test_the_same_command_against_two_servers_reschedules_on_each(tmp_path: Path) -> None:
    # Finding 11: one CLI journal, two servers with the same booking ids.
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    async with SandboxServer() as one, SandboxServer() as other:
        for server in (one, other):
            server.add_token(TOKEN, user_id=USER)
            server.set_balance(USER, Decimal(100))
            server.add_booking(past_booking(101), client_user_id=USER)
            process = await start("-m", "aw_async", "reschedule", "101", "--base-url", server.url, env=env)
            out, err = await process.communicate()
            assert process.returncode == 0, err.decode()
            assert "rescheduled as" in out.decode()
        assert (one.reschedule_count(101), other.reschedule_count(101)) == (1, 1)


@pytest.mark.parametrize(
    ("sent", "code"),
    [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)],
)
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
    seen: list[str] = []
    while len(seen) < 5:  # some outcomes are out: the run is well under way
        seen.append((await process.stdout.readline()).decode())
    process.send_signal(sent)
    rest, err = await process.communicate()
    seen += lines(rest)
    assert process.returncode == code, err.decode()
    reported: list[dict[str, Any]] = [json.loads(line) for line in seen if line.strip()]
    ok = {o["booking_id"] for o in reported if o["ok"]}
    unknown = {o["booking_id"] for o in reported if o["may_have_happened"]}
    rescheduled = {n for n in ids if sandbox.reschedule_count(n)}
    assert all(sandbox.reschedule_count(n) <= 1 for n in ids)
    assert ok <= rescheduled <= ok | unknown  # stdout and the server agree
    assert len(rescheduled) < 300  # it did stop
    assert "not started" in err.decode()
