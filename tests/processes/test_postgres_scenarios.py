"""Across hosts: a PostgresJournal on a real PostgreSQL, shared by worker processes that share
nothing else (each on a "host" of its own where ``unshare`` can make one: tests/processes/_hosts.py), with
every reschedule counted where it happens, on the sandbox.

- The README's web example as four workers, eight concurrent clicks per booking: one reschedule each.
- A worker killed with SIGKILL at each point of an attempt (its POST processed and the answer not
  back yet; its POST not processed yet; its claim taken and its POST not sent): the next worker
  reconciles and never sends twice, and concludes "did not happen" only after the attempt's settle
  window.
- A worker stopped with SIGSTOP while it holds a claim: nobody else sends that booking, and after
  SIGCONT it is rescheduled exactly once.
- Two batches on two hosts over the same ids: each booking once.
- The database restarted mid-batch: nothing sent twice, nothing sent for what could not be claimed,
  and the runs after it finish every booking.

The settle window (30 s + the client's timeout + 60 s) is never waited out: the database's clock
measures an attempt's age, so a test that needs the window passed moves the attempt's start back
in the database (:func:`age_past_its_window`).

Every scenario starts worker processes (a Python each, seconds of a small machine's time), so the
default run keeps one representative (a worker killed after its POST was processed, the next one
reconciling) and the others run under ``-m slow`` (in .ci/run). The journal's rules on PostgreSQL
run in-process by default (tests/journal/test_postgres_model.py, test_postgres_journal.py,
test_postgres_faults.py).
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from aw_async import AdultWorkClient
from aw_async.errors import InFlightElsewhereError
from aw_async.journal import Key, PostgresJournal
from aw_async.phonechat._guard import RENEW_AFTER
from aw_async.testing import VirtualClock

from .._pg_support import sql
from ..postgres import PostgresServer
from ..scripted import eventually
from . import _scenarios
from ._hosts import namespaces_unavailable
from ._scenarios import (
    RESCHEDULE,
    TOKEN,
    GatedSandbox,
    age_past_its_window,
    already_rescheduled_as,
    batch,
    click,
    clicking,
    counts,
    entry_of,
    host_of,
    in_background,
    later,
    owner_gone,
    posts,
    rescheduled_as,
    retry_after_of,
    run_batch,
    web_workers,
)

pytestmark = _scenarios.SANDBOX


# --- the README's web example as four workers ------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "bookings", [pytest.param(6, id="6-bookings"), pytest.param(60, id="60-bookings", marks=pytest.mark.slow)]
)
async def test_four_web_workers_reschedule_each_booking_once_under_eight_concurrent_clicks(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path, bookings: int
) -> None:
    ids = range(1, bookings + 1)
    sandbox.faults.latency = 0.005  # answers take a moment: clicks meet attempts in flight
    async with web_workers(sandbox, postgres_dsn, tmp_path, 4) as workers, clicking() as http:
        clicks = [(n, workers[c % 4]) for n in ids for c in range(8)]
        answers = await asyncio.gather(*(click(http, worker, n) for n, worker in clicks))
        logs = "\n".join(w.errors() for w in workers)
    assert counts(sandbox, ids) == [1] * bookings, logs  # counted on the server's side
    for n in ids:
        (new,) = sandbox.rescheduled(n)
        mine = [answer for (booking, _), answer in zip(clicks, answers, strict=True) if booking == n]
        done = [text for status, text in mine if status == 200]
        refused = [text for status, text in mine if status == 409]
        assert done, mine  # one worker's flight, shared by its clicks that came while it flew
        assert len(done) + len(refused) == 8, mine
        assert {rescheduled_as(text) for text in done} == {new}, mine
        assert all(already_rescheduled_as(text) == new for text in refused), mine
    rows = await sql(postgres_dsn, "SELECT state, decided_by, owner FROM aw_async.attempts")
    assert len(rows) == bookings
    assert {(row["state"], row["decided_by"]) for row in rows} == {("rescheduled", "answer")}
    if namespaces_unavailable() is None:
        assert {host_of(row["owner"]) for row in rows} <= {w.host for w in workers}


@pytest.mark.slow
async def test_each_worker_runs_on_a_host_of_its_own(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path
) -> None:
    reason = namespaces_unavailable()
    if reason is not None:
        pytest.skip(f"only the namespaces are skipped: the other scenarios run without them ({reason})")
    async with web_workers(sandbox, postgres_dsn, tmp_path, 2) as workers, clicking() as http:
        assert [(w.host, w.inner_pid) for w in workers] == [("web-1", 1), ("web-2", 1)]
        assert len({w.pid for w in workers}) == 2
        answers = [await click(http, worker, n) for n, worker in enumerate(workers, 1)]
    assert [status for status, _ in answers] == [200, 200], answers
    owners = [(await entry_of(postgres_dsn, n))["owner"] for n in (1, 2)]
    # Same PID, other hosts: the owners' tokens still differ (their lock keys are random anyway).
    assert [(host_of(o), o.rpartition(":")[2]) for o in owners] == [("web-1", "1"), ("web-2", "1")]


# --- a worker killed -------------------------------------------------------------------------------


async def test_a_worker_killed_after_its_post_was_processed_is_reconciled_by_the_next_and_never_sent_twice(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path
) -> None:
    booking = 7
    sandbox.faults.add("delay", method="POST", path=RESCHEDULE, when="after", seconds=600)
    async with web_workers(sandbox, postgres_dsn, tmp_path, 2) as (first, second), clicking() as http:
        lost = later(click(http, first, booking))
        await eventually(lambda: sandbox.reschedule_count(booking) == 1)  # processed; its answer held
        first.kill()
        with pytest.raises(aiohttp.ClientError):
            await lost
        left = await owner_gone(postgres_dsn, booking)
        assert left["state"] == "in_flight"  # its outcome never recorded: unknown to everyone now
        (new,) = sandbox.rescheduled(booking)
        answers = [await click(http, second, booking) for _ in range(2)]
        log = second.errors()
    assert [status for status, _ in answers] == [409, 409], (answers, log)
    assert [already_rescheduled_as(text) for _, text in answers] == [new, new]
    assert sandbox.reschedule_count(booking) == 1
    assert posts(sandbox) == 1
    decided = await entry_of(postgres_dsn, booking)
    assert (decided["state"], decided["decided_by"], decided["new_booking_id"]) == (
        "rescheduled",
        "reconciliation",
        new,
    )


@pytest.mark.slow
async def test_a_post_processed_after_its_worker_was_killed_is_never_sent_again(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path
) -> None:
    booking = 8
    gate = sandbox.gate("POST", RESCHEDULE)
    async with web_workers(sandbox, postgres_dsn, tmp_path, 2) as (first, second), clicking() as http:
        lost = later(click(http, first, booking))
        await gate.arrived.wait()  # the POST reached the server, which has not processed it yet
        first.kill()
        with pytest.raises(aiohttp.ClientError):
            await lost
        await owner_gone(postgres_dsn, booking)
        status, text = await click(http, second, booking)
        assert status == 504, (text, second.errors())  # it may still land: wait, send nothing
        assert 0 < (retry_after_of(text) or 0) <= (await entry_of(postgres_dsn, booking))["settle_seconds"]
        assert (sandbox.reschedule_count(booking), posts(sandbox)) == (0, 0)
        gate.open()
        await eventually(lambda: sandbox.reschedule_count(booking) == 1)  # it lands, its sender dead
        (new,) = sandbox.rescheduled(booking)
        status, text = await click(http, second, booking)
    assert (status, already_rescheduled_as(text)) == (409, new), text
    assert sandbox.reschedule_count(booking) == 1
    assert posts(sandbox) == 1


@pytest.mark.slow
async def test_a_worker_killed_between_its_claim_and_its_post_is_sent_once_after_the_settle_window(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path
) -> None:
    booking = 9
    gate = sandbox.gate("GET", "MadeBookingDetails")
    async with web_workers(sandbox, postgres_dsn, tmp_path, 2) as (first, second), clicking() as http:
        lost = later(click(http, first, booking))
        await gate.arrived.wait()  # claimed, reading the booking: its POST not sent
        first.kill()
        with pytest.raises(aiohttp.ClientError):
            await lost
        await owner_gone(postgres_dsn, booking)
        # Nobody can tell that its POST never left: before the window has passed, nothing is sent.
        status, text = await click(http, second, booking)
        assert status == 504, (text, second.errors())
        assert 0 < (retry_after_of(text) or 0) <= (await entry_of(postgres_dsn, booking))["settle_seconds"]
        assert posts(sandbox) == 0
        await age_past_its_window(postgres_dsn, [booking])
        status, text = await click(http, second, booking)  # did not happen, proven: sent, once
        assert status == 200, (text, second.errors())
        (new,) = sandbox.rescheduled(booking)
        assert rescheduled_as(text) == new
        again = await click(http, second, booking)
    assert (again[0], already_rescheduled_as(again[1])) == (409, new)
    assert sandbox.reschedule_count(booking) == 1
    assert posts(sandbox) == 1
    decided = await entry_of(postgres_dsn, booking)
    assert (decided["state"], decided["attempt"], decided["decided_by"]) == ("rescheduled", 2, "answer")


# --- a worker stopped ------------------------------------------------------------------------------



@pytest.mark.slow
@pytest.mark.parametrize(
    ("client_timeout", "stopped_for"),
    [
        # A short timeout: the others wait for a live owner that long (wait_elsewhere) before a 409.
        pytest.param(2.0, 0.0, id="one-round-of-clicks"),
        # Past the point where its attempt must be renewed before its POST may leave.
        pytest.param(2.0, RENEW_AFTER + 1, id="past-its-renewal", marks=pytest.mark.slow),
        # The README's own timeout (10 s): the others wait 10 s before their 409.
        pytest.param(
            None,
            0.0,
            id="the-readme-timeout",
            marks=[pytest.mark.slow],
        ),
    ],
)
async def test_a_stopped_worker_keeps_its_claim_and_reschedules_once_after_sigcont(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path, client_timeout: float | None, stopped_for: float
) -> None:
    booking = 10
    gate = sandbox.gate("GET", "MadeBookingDetails")
    three = web_workers(sandbox, postgres_dsn, tmp_path, 3, client_timeout=client_timeout)
    async with three as workers, clicking() as http:
        stopped, others = workers[0], workers[1:]
        first = later(click(http, stopped, booking))
        await gate.arrived.wait()  # it holds its claim, its POST not sent
        stopped.send(signal.SIGSTOP)
        since = asyncio.get_running_loop().time()
        while True:  # however long it is stopped, nobody else sends
            answers = await asyncio.gather(*(click(http, w, booking) for w in others for _ in range(2)))
            assert {status for status, _ in answers} == {409}, answers
            assert all("is being rescheduled by another process" in text for _, text in answers), answers
            held = await entry_of(postgres_dsn, booking)
            assert (held["state"], held["alive"], host_of(held["owner"])) == ("in_flight", True, stopped.host)
            assert posts(sandbox) == 0
            if asyncio.get_running_loop().time() - since >= stopped_for:
                break
        gate.open()  # its read is answered while it is stopped
        stopped.send(signal.SIGCONT)
        status, text = await first
        assert status == 200, (text, stopped.errors())
        (new,) = sandbox.rescheduled(booking)
        assert rescheduled_as(text) == new
        after = await asyncio.gather(*(click(http, w, booking) for w in workers))
    assert {(s, already_rescheduled_as(t)) for s, t in after} == {(409, new)}, after
    assert sandbox.reschedule_count(booking) == 1
    assert posts(sandbox) == 1
    done = await entry_of(postgres_dsn, booking)
    assert (done["attempt"], done["owner"]) == (held["attempt"], held["owner"])  # its own claim, kept
    if stopped_for > RENEW_AFTER:  # its attempt was renewed before its POST left
        assert done["started_at"] > held["started_at"]


@pytest.mark.slow
async def test_a_live_owner_elsewhere_is_waited_for_the_whole_timeout_then_in_flight_elsewhere(
    sandbox: GatedSandbox, postgres_dsn: str, clock: VirtualClock
) -> None:
    # The other owner: alive as far as the database can tell, as a stopped process is.
    elsewhere = PostgresJournal(postgres_dsn)
    try:
        async with AdultWorkClient(
            TOKEN, base_url=sandbox.url, journal=postgres_dsn, timeout=10, clock=clock
        ) as aw:
            held = await elsewhere.claim(Key(aw.phonechat.api_root, 13), force=False, settle=100.0)
            assert held.granted
            with pytest.raises(InFlightElsewhereError):
                await aw.phonechat.reschedule_made_booking(13)
            assert clock.now() >= 10  # its wait_elsewhere (the timeout), waited on its own clock
    finally:
        await elsewhere.aclose()
    assert posts(sandbox) == 0


# --- the database restarted under the web workers ---------------------------------------------------


@pytest.mark.slow
async def test_a_web_worker_whose_database_restarts_under_a_click_sends_nothing_for_it_then_sends_once(
    sandbox: GatedSandbox, postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    if not postgres_server.can_restart:
        pytest.skip("the server AW_TEST_POSTGRES_DSN names cannot be restarted by the tests")
    booking = 11
    gate = sandbox.gate("GET", "MadeBookingDetails")
    async with web_workers(sandbox, postgres_dsn, tmp_path, 2) as (first, second), clicking() as http:
        held = later(click(http, first, booking))
        await gate.arrived.wait()  # claimed; its owner's session is about to end with the server
        await asyncio.to_thread(postgres_server.restart)
        gate.open()
        status, text = await held
        assert status != 200, text  # its claim lost before its POST: nothing sent
        assert posts(sandbox) == 0
        status, text = await click(http, first, booking)  # its refusal recorded first: sent, once
        assert status == 200, (text, first.errors())
        (new,) = sandbox.rescheduled(booking)
        assert rescheduled_as(text) == new
        again = await click(http, second, booking)
    assert (again[0], already_rescheduled_as(again[1])) == (409, new)
    assert sandbox.reschedule_count(booking) == 1
    assert posts(sandbox) == 1


@pytest.mark.slow
async def test_a_web_worker_whose_database_is_down_answers_503_and_sends_nothing(
    sandbox: GatedSandbox, postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    if not postgres_server.can_restart:
        pytest.skip("the server AW_TEST_POSTGRES_DSN names cannot be stopped by the tests")
    async with web_workers(sandbox, postgres_dsn, tmp_path, 1) as (worker,), clicking() as http:
        await asyncio.to_thread(postgres_server.stop)
        try:
            status, text = await click(http, worker, 12)
        finally:
            await asyncio.to_thread(postgres_server.start)
    assert posts(sandbox) == 0
    assert status == 503, text


# --- batches ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "count", [pytest.param(200, id="200-ids"), pytest.param(2000, id="2000-ids", marks=pytest.mark.slow)]
)
async def test_two_batches_on_two_hosts_over_the_same_ids_reschedule_each_booking_once(
    sandbox: GatedSandbox, postgres_dsn: str, tmp_path: Path, count: int
) -> None:
    ids = range(1, count + 1)
    first, second = await asyncio.gather(
        run_batch("batch-a", batch(sandbox, postgres_dsn, ids, 16), tmp_path),
        run_batch("batch-b", batch(sandbox, postgres_dsn, ids, 16), tmp_path),
    )
    assert counts(sandbox, ids) == [1] * count  # counted on the server's side
    for n in ids:  # each booking: done by one host, refused by the other
        assert sorted([first[n], second[n]]) == ["AlreadyRescheduledError", "ok"], (n, first[n], second[n])
    rows = await sql(postgres_dsn, "SELECT owner FROM aw_async.attempts")
    if namespaces_unavailable() is None:
        assert {host_of(row["owner"]) for row in rows} <= {"batch-a", "batch-b"}


@pytest.mark.slow
async def test_a_database_restarted_mid_batch_sends_nothing_twice_and_later_runs_finish_it(
    sandbox: GatedSandbox, postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    if not postgres_server.can_restart:
        pytest.skip("the server AW_TEST_POSTGRES_DSN names cannot be restarted by the tests")
    ids = range(1, 241)
    sandbox.faults.latency = 0.02  # slow enough that the restart meets the batch mid-way
    async with in_background(run_batch("batch-a", batch(sandbox, postgres_dsn, ids, 8), tmp_path)) as running:
        await eventually(lambda: sum(counts(sandbox, ids)) >= 16)
        await asyncio.to_thread(postgres_server.restart)
        first = await running
    sandbox.faults.latency = 0.0
    assert set(counts(sandbox, ids)) <= {0, 1}
    by_outcome = Counter(first.values())
    assert by_outcome["JournalError"] > 0, by_outcome  # the restart met the batch
    assert set(by_outcome) <= {"ok", "JournalError"}, by_outcome
    for n, outcome in first.items():  # a booking the journal failed got nothing sent
        assert sandbox.reschedule_count(n) == (1 if outcome == "ok" else 0), (n, outcome)
    # Another host, after the restart: what the first one did is reconciled, the rest sent once; an
    # attempt claimed before the restart and never sent cannot be told from one sent: it waits.
    second = await run_batch("batch-b", batch(sandbox, postgres_dsn, ids, 8), tmp_path)
    assert set(counts(sandbox, ids)) <= {0, 1}
    for n in ids:
        if first[n] == "ok":
            assert second[n] == "AlreadyRescheduledError", (n, second[n])
        else:
            assert second[n] in {"ok", "OutcomeUnknownError"}, (n, second[n])
            assert sandbox.reschedule_count(n) == (1 if second[n] == "ok" else 0), (n, second[n])
    waiting = [n for n in ids if second[n] == "OutcomeUnknownError"]
    await age_past_its_window(postgres_dsn, waiting)
    third = await run_batch("batch-c", batch(sandbox, postgres_dsn, ids, 8), tmp_path)
    assert counts(sandbox, ids) == [1] * len(ids)  # every booking, once
    assert {n for n in ids if third[n] == "ok"} == set(waiting)
    rows = await sql(postgres_dsn, "SELECT state FROM aw_async.attempts")
    assert {row["state"] for row in rows} == {"rescheduled"}


@pytest.mark.slow
async def test_outcomes_the_database_could_not_record_are_reconciled_by_the_next_batch_never_sent_again(
    sandbox: GatedSandbox, postgres_server: PostgresServer, postgres_dsn: str, tmp_path: Path
) -> None:
    if not postgres_server.can_restart:
        pytest.skip("the server AW_TEST_POSTGRES_DSN names cannot be stopped by the tests")
    ids = range(1, 121)
    gate = sandbox.gate("POST", RESCHEDULE, times=8)
    async with in_background(run_batch("batch-a", batch(sandbox, postgres_dsn, ids, 8), tmp_path)) as running:
        await eventually(lambda: gate.held == 8)  # every worker's POST has reached the server, unprocessed
        await asyncio.to_thread(postgres_server.stop)
        try:
            gate.open()  # processed and answered while the database is down: no outcome can be recorded
            first = await running
        finally:
            await asyncio.to_thread(postgres_server.start)
    done = sorted(n for n, outcome in first.items() if outcome == "ok")
    assert len(done) == 8, first
    assert {first[n] for n in ids if n not in done} == {"JournalError"}  # claims refused: nothing sent
    assert [n for n in ids if sandbox.reschedule_count(n)] == done
    for n in done:  # left in flight under an owner that is gone: unknown to everyone
        left = await entry_of(postgres_dsn, n)
        assert (left["state"], left["alive"]) == ("in_flight", False), left
    second = await run_batch("batch-b", batch(sandbox, postgres_dsn, ids, 8), tmp_path)
    assert counts(sandbox, ids) == [1] * len(ids)
    assert {second[n] for n in done} == {"AlreadyRescheduledError"}
    assert {second[n] for n in ids if n not in done} == {"ok"}
    for n in done:
        decided = await entry_of(postgres_dsn, n)
        assert (decided["state"], decided["decided_by"], decided["new_booking_id"]) == (
            "rescheduled",
            "reconciliation",
            sandbox.rescheduled(n)[0],
        )
