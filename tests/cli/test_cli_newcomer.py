"""A newcomer's first hour at the command line: a busy port explained, a sandbox that serves the token
it is given, the plain-http refusal that names its option, settings from the environment, a 403 that
asks about membership, readable money, and an ids file whose every bad line is reported at once.
In-process against the served demo sandbox (tests/cli/conftest.py), but for the sandbox command."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from aw_async import AdultWorkClient
from aw_async.errors import PermissionDeniedError
from aw_async.sandbox import make_booking

from .cli_support import ROOT, Cli, ServedSandbox


def test_sandbox_on_a_busy_port_says_so(cli: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = cli("sandbox", "--port", str(port))
    assert code == 1
    assert "Traceback" not in err
    assert f"cannot serve on 127.0.0.1:{port}" in err
    assert "--port 0" in err


def test_sandbox_serves_the_token_it_is_given_in_the_format_it_is_given(cli: Cli) -> None:
    # In a process of its own: the sandbox command serves until interrupted.
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aw_async",
            "sandbox",
            "--port",
            "0",
            "--token",
            "my-own-token",
            "--format",
            "xml",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(9)]
        url = printed[0].split(" on ")[1].split()[0]
        code, out, err = cli("balance", "--base-url", url, "--token", "my-own-token")
        assert (code, out) == (0, "50.00 credits\n"), err
        # What it suggests names the format, and a request that names none is answered in it.
        assert any(line.strip().endswith("--format xml") for line in printed), printed
        asked = urllib.request.Request(
            url + "/v1/CreditHistory/GetCurrentCreditBalance",
            headers={"Authorization": "bearer my-own-token", "Accept": "*/*"},
        )
        with urllib.request.urlopen(asked, timeout=30) as answered:
            assert answered.headers["Content-Type"].startswith("application/xml")
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_the_plain_http_refusal_names_the_option(cli: Cli) -> None:
    code, _, err = cli("balance", "--base-url", "http://example.com", "--token", "t")
    assert code == 2
    assert "--allow-insecure-http" in err
    assert "allow_insecure_http=True" not in err


def test_the_base_url_can_come_from_the_environment(
    cli: Cli, sandbox: ServedSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AW_BASE_URL", sandbox.url)
    code, out, err = cli("balance", "--token", sandbox.demo.token)
    assert (code, out) == (0, "50.00 credits\n"), err


def test_a_403_for_a_group_member_asks_about_membership(cli: Cli, sandbox: ServedSandbox) -> None:
    code, _, err = cli("booking", "201", "--as-user", "9999", *sandbox.at())
    assert code == 1
    assert "is user 9999 a member of a group you manage?" in err

    async def as_a_stranger() -> None:
        async with AdultWorkClient(sandbox.demo.token, base_url=sandbox.url) as aw:
            await aw.phonechat.made_booking_details(201, as_user=9999)

    with pytest.raises(PermissionDeniedError) as caught:
        asyncio.run(as_a_stranger())
    assert caught.value.acting_for == 9999


def test_one_booking_is_one_booking(cli: Cli, sandbox: ServedSandbox) -> None:
    code, out, _ = cli("reschedule", str(sandbox.demo.passed[0]), *sandbox.at(), "--no-journal")
    assert code == 0
    assert out.splitlines()[-1] == "1 booking: 1 rescheduled, 0 failed"


def test_an_ids_file_reports_every_bad_line_at_once(cli: Cli, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("101\nabc\n０\n0\n12345678901234567890123\n102 # fine\n-5\n")
    code, _, err = cli("reschedule", "--from-file", str(ids), "--token", "t")
    assert code == 2
    for number in (2, 3, 4, 5, 7):
        assert f"line {number}:" in err
    assert "line 1:" not in err
    assert "line 6:" not in err
    assert "5 bad lines" in err


@pytest.mark.parametrize("command", ["booking", "reschedule"])
def test_money_looks_the_same_in_both_formats(cli: Cli, sandbox: ServedSandbox, command: str) -> None:
    sandbox.server.add_booking(make_booking(300, credits="6"), client_user_id=sandbox.demo.user_id)
    shown = []
    for format in ("json", "xml"):
        args = [command, "300", "--format", format, *sandbox.at(), "--json"]
        if command == "reschedule":
            args += ["--no-journal", "--force"]
        code, out, err = cli(*args)
        assert code == 0, err
        document = json.loads(out if command == "booking" else out.splitlines()[0])
        shown.append(document["credits"] if command == "booking" else document["booking"]["credits"])
        code, out, _ = cli(*[a for a in args if a != "--json"])
        assert "6.00 credits" in out
    assert shown == ["6.00", "6.00"]
