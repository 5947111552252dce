"""The aw-async command line, run in-process against a sandbox on loopback (a few runs in a real
process where the process matters: its exit code, its stdout's encoding, a signal)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from aw_async import AdultWorkClient
from aw_async.sandbox import make_booking

from .cli_support import Cli, ServedSandbox, run_process

_HOUR = timedelta(hours=1)


# --- demo and sandbox --------------------------------------------------------------------------------


def test_demo_walks_the_whole_job_in_both_formats(cli: Cli) -> None:
    ran = cli("demo")
    assert ran.code == 0, ran.err
    assert "== JSON ==" in ran.out
    assert "== XML ==" in ran.out
    assert ran.out.count("SessionNotPassedError") == 2
    assert ran.out.count("InsufficientCreditsError") == 2
    assert ran.out.rstrip().endswith("Everything behaved as documented.")


@pytest.mark.parametrize(
    "options",
    [
        ["--token", "t"],
        ["--base-url", "https://api.example.com"],
        ["--timeout", "5"],
        ["--allow-insecure-http"],
    ],
)
def test_demo_refuses_the_options_it_would_ignore(cli: Cli, options: list[str]) -> None:
    ran = cli("demo", *options)
    assert ran.code == 2
    assert f"demo runs against a sandbox of its own: {options[0]} would be ignored" in ran.err
    assert "==" not in ran.out  # refused before it began


def test_the_sandbox_command_refuses_a_base_url() -> None:
    # In a process of its own: were the option ignored, the sandbox would serve until interrupted.
    ran = run_process("sandbox", "--port", "0", "--base-url", "http://127.0.0.1:9", timeout=60)
    assert ran.code == 2
    assert "--base-url would be ignored" in ran.err


# --- reading ---------------------------------------------------------------------------------------


def test_balance(cli: Cli, sandbox: ServedSandbox) -> None:
    assert cli("balance", *sandbox.at()) == (0, "50.00 credits\n", "")
    ran = cli("balance", "--json", "--format", "xml", *sandbox.at())
    assert (ran.code, json.loads(ran.out)) == (0, {"balance": "50.00"})


def test_booking(cli: Cli, sandbox: ServedSandbox) -> None:
    ran = cli("booking", "101", *sandbox.at())
    assert ran.code == 0
    assert ran.out.startswith("booking 101: Confirmed, 15 min for 8.00 credits with BookedUser")
    document = json.loads(cli("booking", "101", "--json", *sandbox.at()).out)
    assert (document["booking_id"], document["credits"], document["status"]) == (101, "8.00", "Confirmed")
    member, booking = sandbox.demo.member_booking
    ran = cli("booking", str(booking), "--as-user", str(member), *sandbox.at())
    assert ran.code == 0
    assert f"booking {booking}" in ran.out


def test_an_api_error_is_exit_1_with_a_message(cli: Cli, sandbox: ServedSandbox) -> None:
    ran = cli("booking", "999", *sandbox.at())
    assert (ran.code, ran.out) == (1, "")
    assert ran.err.startswith("error: 404: No PhoneChat booking with BookingID 999 was found.")
    assert "(NotFoundError)" in ran.err


def test_the_token_and_the_url_can_come_from_the_environment(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AW_ACCESS_TOKEN", sandbox.demo.token)
    monkeypatch.setenv("AW_BASE_URL", sandbox.url)
    assert cli("balance") == (0, "50.00 credits\n", "")


def test_bookings_lists_every_booking_newest_first(cli: Cli, sandbox: ServedSandbox) -> None:
    demo = sandbox.demo
    own = sandbox.server.bookings_of(demo.user_id)
    ran = cli("bookings", *sandbox.at())
    assert ran.code == 0, ran.err
    assert ran.lines[-1] == f"{len(own)} bookings"
    assert len(ran.lines) == len(own) + 1
    assert all(line.startswith("booking ") for line in ran.lines[:-1])
    listed = json.loads(
        cli("bookings", "--json", "--order", "date-asc", "--format", "xml", *sandbox.at()).out
    )
    assert sorted(b["booking_id"] for b in listed) == sorted(b.booking_id for b in own)
    created = [b["create_date"] for b in listed]
    assert created == sorted(created)
    member, booking = demo.member_booking
    ran = cli("bookings", "--as-user", str(member), *sandbox.at())
    assert ran.lines[1:] == ["1 booking"]
    assert f"booking {booking}:" in ran.lines[0]


def test_bookings_since(cli: Cli, sandbox: ServedSandbox) -> None:
    assert cli("bookings", "--since", "2999-01-01", *sandbox.at()) == (0, "0 bookings\n", "")
    ran = cli("bookings", "--since", "30d", "--json", *sandbox.at())
    assert len(json.loads(ran.out)) == len(sandbox.server.bookings_of(sandbox.demo.user_id))
    ran = cli("bookings", "--since", "yesterday", *sandbox.at())
    assert ran.code == 2
    assert "neither a day" in ran.err


def test_cancel(cli: Cli, sandbox: ServedSandbox) -> None:
    demo = sandbox.demo
    ran = cli("cancel", str(demo.upcoming), "--reason", "cannot make it", *sandbox.at())
    assert ran.code == 0, ran.err
    assert ran.out.startswith(f"cancelled booking {demo.upcoming}: Cancelled")
    ran = cli("cancel", str(demo.upcoming), "--reason", "again", *sandbox.at())
    assert ran.code == 1
    assert "BookingStatusError" in ran.err
    assert cli("cancel", str(demo.passed[0]), *sandbox.at()).code == 2  # --reason is required
    assert sandbox.paths().count("CancelMadeBooking") == 1


# --- what the command line says ----------------------------------------------------------------------


def test_the_command_line_never_speaks_python(cli: Cli, sandbox: ServedSandbox) -> None:
    said = [cli("reschedule", "101", *sandbox.at())]
    said += [cli("reschedule", "101", *options, *sandbox.at()) for options in ([], ["--json"], ["--dry-run"])]
    said += [cli("reschedule", "--help"), cli("reconcile", "101", "--json", *sandbox.at())]
    said += [cli("balance", "--base-url", "http://api.example.com", "--token", "t")]
    text = "\n".join(ran.out + ran.err for ran in said)
    for python in ("force=True", "allow_insecure_http", "check_preconditions", "on_refresh"):
        assert python not in text
    assert "--force" in said[4].out
    assert "--allow-insecure-http" in said[6].err


def test_json_lines_are_ascii_and_alike_for_reschedule_and_reconcile(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    smiling = make_booking(
        300, comments="See you \N{GRINNING FACE}", nickname="Smiley \N{GRINNING FACE}", session_date=-_HOUR
    )
    sandbox.server.add_booking(smiling, client_user_id=sandbox.demo.user_id)
    written = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(written, encoding="latin-1"))

    def stdout_of(*argv: str) -> bytes:
        before = len(written.getvalue())
        cli(*argv)
        sys.stdout.flush()
        return written.getvalue()[before:]

    rescheduled = stdout_of("reschedule", "300", "--json", *sandbox.at())
    reconciled = stdout_of("reconcile", "300", "--json", *sandbox.at())
    for raw in (rescheduled, reconciled):
        assert raw.isascii()
        assert b"See you \\ud83d\\ude00" in raw
    first, again = json.loads(rescheduled), json.loads(reconciled)
    assert set(first) == set(again)
    assert first["booking"] == again["booking"]
    assert first["booking"]["comments"] == "See you \N{GRINNING FACE}"
    shown = stdout_of("booking", str(first["new_booking_id"]), *sandbox.at())
    assert b"with Smiley \\U0001f600, session" in shown  # people's lines get through, escaped


# --- usage errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["reschedule"], "reschedule needs booking ids"),
        (["reschedule", "--passed-since", "yesterday"], "not a span"),
        (["reschedule", "1", "--include-reschedules"], "--include-reschedules goes with --passed-since"),
        (["reschedule", "1", "--concurrency", "0"], "--concurrency must be at least 1"),
        (["reschedule", "1", "--max-rate", "0"], "--max-rate must be a positive number"),
        (["reschedule", "1", "--max-rate", "inf"], "--max-rate must be a positive number"),
        (["reschedule", "1", "--max-rate", "nan"], "--max-rate must be a positive number"),
        (["reschedule", "1", "--timeout", "0"], "not a positive number of seconds"),
        (["reschedule", "1", "--journal", "j.sqlite3", "--no-journal"], "not allowed with argument"),
        (
            ["reschedule", "1", "--journal", "mysql://db/j"],
            "--journal 'mysql://db/j': a file, or a postgresql",
        ),
        (["reschedule", "1", "--journal", ""], "--journal '': a file, or a postgresql:// URL"),
        (["reschedule", "abc"], "'abc' is not a booking id"),
        (["reschedule", "０"], "ASCII digits only"),
        (["reschedule", "0"], "1 to 2147483647"),
        (["reschedule", "12345678901234567890123"], "1 to 2147483647"),
        (["journal", "list", "--state", "lost"], "invalid choice"),
        (["journal", "list", "--no-journal"], "unrecognized arguments: --no-journal"),
        (["journal", "list", "--token", "t"], "journal list sends no request: --token would be ignored"),
        (
            ["journal", "resolve", "1"],
            "one of the arguments --rescheduled-into --not-rescheduled is required",
        ),
        (["journal", "resolve", "1", "--rescheduled-into", "2", "--not-rescheduled"], "not allowed with"),
        (["frobnicate"], "invalid choice"),
        (["balance", "--format", "yaml"], "invalid choice"),
    ],
)
def test_usage_errors_are_exit_2(cli: Cli, args: list[str], message: str) -> None:
    ran = cli(*args, *(["--token", "t"] if args[0] != "journal" else []))
    assert ran.code == 2
    assert message in ran.err


def test_no_token_is_a_usage_error_that_names_both_ways(cli: Cli) -> None:
    ran = cli("balance")
    assert ran.code == 2
    assert "pass --token or set AW_ACCESS_TOKEN, or set AW_REFRESH_TOKEN, AW_CLIENT_ID and" in ran.err


def test_a_bad_file_of_ids_is_a_usage_error(cli: Cli, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("101\nten\n")
    ran = cli("reschedule", "--from-file", str(ids), "--token", "t")
    assert ran.code == 2
    assert "line 2: 'ten' is not a booking id" in ran.err


# --- in a process of its own -------------------------------------------------------------------------


def test_python_dash_m_runs_a_batch_and_exits_with_its_outcome(cli: Cli, sandbox: ServedSandbox) -> None:
    # One run in a process of its own: its exit status is the batch's. (Each code in-process: below.)
    failed = run_process("reschedule", "101", str(sandbox.demo.upcoming), *sandbox.at())
    assert failed.code == 1, failed.err
    assert failed.lines[-1] == "2 bookings: 1 rescheduled, 1 failed (1 SessionNotPassedError)"
    done = cli("reschedule", "101", *sandbox.at())
    assert (done.code, done.lines[-1]) == (0, "1 booking: 0 rescheduled, 1 already rescheduled, 0 failed")
    assert cli("reschedule", "--token", "t").code == 2


def test_json_is_valid_on_a_latin_1_stdout(sandbox: ServedSandbox) -> None:
    booking = make_booking(300, comments="\N{GRINNING FACE} caf\N{LATIN SMALL LETTER E WITH ACUTE}")
    sandbox.server.add_booking(booking, client_user_id=sandbox.demo.user_id)
    done = subprocess.run(
        [sys.executable, "-m", "aw_async", "reschedule", "300", "--json", *sandbox.at()],
        capture_output=True,
        timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "latin-1"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.isascii()
    (line,) = done.stdout.splitlines()
    assert json.loads(line)["booking"]["comments"] == booking.comments


def test_the_sandbox_command_serves_until_interrupted(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "aw_async", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(5)]
        url = lines[0].split(" on ")[1].split()[0]
        token = lines[1].split()[1]

        async def balance() -> Decimal:
            async with AdultWorkClient(token, base_url=url) as aw:
                return await aw.credit_history.get_current_credit_balance()

        assert asyncio.run(balance()) == Decimal("50.00")
        assert lines[4].startswith("  refresh   AW_REFRESH_TOKEN=")
        for variable in lines[4].split()[1:]:  # the refresh credentials it prints work too
            monkeypatch.setenv(*variable.split("=", 1))
        assert cli("balance", "--base-url", url) == (0, "50.00 credits\n", "")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert "sandbox stopped" in out
