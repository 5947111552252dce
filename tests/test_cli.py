"""The aw-async command line, run as a subprocess against a sandbox on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from aw_async import AdultWorkClient
from aw_async.sandbox import DemoData, SandboxServer, seed_demo


@pytest.fixture
async def sandbox() -> AsyncIterator[tuple[SandboxServer, DemoData]]:
    async with SandboxServer() as server:
        yield server, seed_demo(server)


async def run(
    *args: str, env: dict[str, str] | None = None, stderr: int | None = None
) -> tuple[int, str, str]:
    """Run ``python -m aw_async ARGS`` while this loop keeps serving the sandbox."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aw_async",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=stderr if stderr is not None else asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=120)
    assert process.returncode is not None
    return process.returncode, out.decode(), (err or b"").decode()


def at(sandbox: tuple[SandboxServer, DemoData]) -> list[str]:
    server, demo = sandbox
    return ["--base-url", server.url, "--token", demo.token]


async def test_demo_walks_the_whole_job_in_both_formats() -> None:
    code, out, err = await run("demo")
    assert code == 0, err
    assert "== JSON ==" in out
    assert "== XML ==" in out
    assert out.count("SessionNotPassedError") == 2
    assert out.count("InsufficientCreditsError") == 2
    assert out.rstrip().endswith("Everything behaved as documented.")


async def test_balance(sandbox: tuple[SandboxServer, DemoData]) -> None:
    assert await run("balance", *at(sandbox)) == (0, "50.00 credits\n", "")
    code, out, _ = await run("balance", "--json", "--format", "xml", *at(sandbox))
    assert (code, json.loads(out)) == (0, {"balance": "50.00"})


async def test_booking(sandbox: tuple[SandboxServer, DemoData]) -> None:
    code, out, _ = await run("booking", "101", *at(sandbox))
    assert code == 0
    assert out.startswith("booking 101: Confirmed, 15 min for 8.00 credits with BookedUser")
    code, out, _ = await run("booking", "101", "--json", *at(sandbox))
    document = json.loads(out)
    assert (document["booking_id"], document["credits"], document["status"]) == (101, "8.00", "Confirmed")
    member, booking = sandbox[1].member_booking
    code, out, _ = await run("booking", str(booking), "--as-user", str(member), *at(sandbox))
    assert code == 0
    assert f"booking {booking}" in out


async def test_an_api_error_is_exit_1_with_a_message(sandbox: tuple[SandboxServer, DemoData]) -> None:
    code, out, err = await run("booking", "999", *at(sandbox))
    assert (code, out) == (1, "")
    assert err.startswith("error: 404: No PhoneChat booking with BookingID 999 was found.")
    assert "(NotFoundError)" in err


async def test_the_token_can_come_from_the_environment(sandbox: tuple[SandboxServer, DemoData]) -> None:
    server, demo = sandbox
    code, out, _ = await run("balance", "--base-url", server.url, env={"AW_ACCESS_TOKEN": demo.token})
    assert (code, out) == (0, "50.00 credits\n")


async def test_reschedule_all_done_is_exit_0(sandbox: tuple[SandboxServer, DemoData]) -> None:
    code, out, _ = await run("reschedule", "101", "102", *at(sandbox))
    assert code == 0
    assert out.splitlines()[-1] == "2 bookings: 2 rescheduled, 0 failed"
    assert sandbox[0].get_balance(1001) == Decimal("29.50")


async def test_reschedule_some_failed_is_exit_1_and_json_says_why(
    sandbox: tuple[SandboxServer, DemoData],
) -> None:
    _server, demo = sandbox
    code, out, _ = await run(
        "reschedule",
        "101",
        str(demo.upcoming),
        str(demo.expensive),
        "--json",
        "--concurrency",
        "1",  # in order: 101's credits are spent before 120's are checked
        *at(sandbox),
    )
    assert code == 1
    # One JSON object a line, each printed as its booking completed (so in completion order).
    outcomes = sorted(
        (json.loads(line) for line in out.splitlines()),
        key=lambda o: [101, demo.upcoming, demo.expensive].index(o["booking_id"]),
    )
    assert [(o["booking_id"], o["ok"]) for o in outcomes] == [
        (101, True),
        (demo.upcoming, False),
        (demo.expensive, False),
    ]
    assert outcomes[1]["error"]["type"] == "SessionNotPassedError"
    assert outcomes[2]["error"] == {
        "type": "InsufficientCreditsError",
        "message": "booking 120 needs 75.00 credits but the balance available is 42.00",
        "required": "75.00",
        "balance": "42.00",
    }
    assert outcomes[0]["booking"]["status"] == "Pending"


async def test_reschedule_from_a_file(sandbox: tuple[SandboxServer, DemoData], tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# bookings from last night\n101\n\n102  # the long one\n101\n")
    code, out, _ = await run("reschedule", "--from-file", str(ids), "103", *at(sandbox))
    assert code == 0
    assert out.splitlines()[-1] == "3 bookings: 3 rescheduled, 0 failed"


async def test_reschedule_without_checks_sends_posts_only(sandbox: tuple[SandboxServer, DemoData]) -> None:
    server, demo = sandbox
    code, _, _ = await run(
        "reschedule", "101", str(demo.upcoming), "--no-check", "--concurrency", "1", *at(sandbox)
    )
    assert code == 1  # the server itself refuses the upcoming one
    assert {r.method for r in server.requests} == {"POST"}


async def test_a_progress_line_on_a_terminal(sandbox: tuple[SandboxServer, DemoData]) -> None:
    master, slave = pty.openpty()
    try:
        code, _out, _ = await run("reschedule", *map(str, sandbox[1].passed), *at(sandbox), stderr=slave)
        os.close(slave)
        progress = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            progress += chunk
    finally:
        os.close(master)
    assert code == 0
    assert b"\r5/5 done, 0 failed" in progress


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reschedule"], "reschedule needs booking ids"),
        (["reschedule", "--passed-since", "yesterday"], "not a span"),
        (["reschedule", "1", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["reschedule", "abc"], "'abc' is not a booking id"),
        (["reschedule", "０"], "ASCII digits only"),
        (["reschedule", "0"], "1 to 2147483647"),
        (["reschedule", "12345678901234567890123"], "1 to 2147483647"),
        (["reschedule", "--dry-run", "1"], "--dry-run goes with --passed-since"),
        (["frobnicate"], "invalid choice"),
        (["balance", "--format", "yaml"], "invalid choice"),
    ],
)
async def test_usage_errors_are_exit_2(args: list[str], message: str) -> None:
    code, _, err = await run(*args, "--token", "t")
    assert code == 2
    assert message in err


async def test_no_token_is_a_usage_error() -> None:
    env = {key: value for key, value in os.environ.items() if key != "AW_ACCESS_TOKEN"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aw_async", "balance", stderr=asyncio.subprocess.PIPE, env=env
    )
    _, err = await process.communicate()
    assert process.returncode == 2
    assert b"pass --token or set AW_ACCESS_TOKEN" in err


async def test_a_bad_file_of_ids_is_a_usage_error(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("101\nten\n")
    code, _, err = await run("reschedule", "--from-file", str(ids), "--token", "t")
    assert code == 2
    assert "line 2: 'ten' is not a booking id" in err


async def test_the_sandbox_command_serves_until_interrupted() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aw_async",
        "sandbox",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    lines = [(await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode() for _ in range(2)]
    url = lines[0].split(" on ")[1].split()[0]
    token = lines[1].split()[1]
    async with AdultWorkClient(token, base_url=url) as aw:
        assert str(await aw.credit_history.get_current_credit_balance()) == "50.00"
    process.send_signal(signal.SIGINT)
    out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 0
    assert b"sandbox stopped" in out


async def test_bookings_lists_every_booking_newest_first(sandbox: tuple[SandboxServer, DemoData]) -> None:
    server, demo = sandbox
    code, out, err = await run("bookings", *at(sandbox))
    assert code == 0, err
    lines = out.strip().splitlines()
    own = server.bookings_of(demo.user_id)
    assert lines[-1] == f"{len(own)} bookings"
    assert len(lines) == len(own) + 1
    assert all(line.startswith("booking ") for line in lines[:-1])
    code, out, _ = await run("bookings", "--json", "--order", "date-asc", "--format", "xml", *at(sandbox))
    listed = json.loads(out)
    assert sorted(b["booking_id"] for b in listed) == sorted(b.booking_id for b in own)
    created = [b["create_date"] for b in listed]
    assert created == sorted(created)
    member, booking = demo.member_booking
    code, out, _ = await run("bookings", "--as-user", str(member), *at(sandbox))
    assert out.strip().splitlines() == [out.strip().splitlines()[0], "1 booking"]
    assert f"booking {booking}:" in out


async def test_bookings_since(sandbox: tuple[SandboxServer, DemoData]) -> None:
    code, out, _ = await run("bookings", "--since", "2999-01-01", *at(sandbox))
    assert (code, out) == (0, "0 bookings\n")
    code, out, _ = await run("bookings", "--since", "30d", "--json", *at(sandbox))
    assert code == 0
    assert len(json.loads(out)) == len(sandbox[0].bookings_of(sandbox[1].user_id))
    code, _, err = await run("bookings", "--since", "yesterday", *at(sandbox))
    assert code == 2
    assert "neither a day" in err


async def test_cancel(sandbox: tuple[SandboxServer, DemoData]) -> None:
    server, demo = sandbox
    code, out, err = await run("cancel", str(demo.upcoming), "--reason", "cannot make it", *at(sandbox))
    assert code == 0, err
    assert out.startswith(f"cancelled booking {demo.upcoming}: Cancelled")
    code, out, err = await run("cancel", str(demo.upcoming), "--reason", "again", *at(sandbox))
    assert code == 1
    assert "BookingStatusError" in err
    code, _, err = await run("cancel", str(demo.passed[0]), *at(sandbox))
    assert code == 2  # --reason is required
    assert sum(1 for r in server.requests if r.path.endswith("CancelMadeBooking")) == 1


async def test_a_rerun_that_finds_everything_done_says_so_and_succeeds(
    sandbox: tuple[SandboxServer, DemoData], tmp_path: Path
) -> None:
    server, demo = sandbox
    journal = ["--journal", str(tmp_path / "journal.sqlite3")]
    ids = [str(demo.passed[0]), str(demo.passed[1])]
    assert (await run("reschedule", *ids, *journal, *at(sandbox)))[0] == 0
    code, out, _ = await run("reschedule", *ids, *journal, *at(sandbox))
    assert code == 0
    assert out.splitlines()[-1] == "2 bookings: 0 rescheduled, 2 already rescheduled, 0 failed"
    assert "already rescheduled into booking" in out
    assert all(server.reschedule_count(int(i)) == 1 for i in ids)
