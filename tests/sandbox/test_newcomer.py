"""A newcomer's first hour: a silent logger, fixtures that explain themselves, a busy port explained,
readable money, a sandbox that refuses a colliding id."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from aw_async import AdultWorkClient, RefreshingToken
from aw_async.errors import AuthenticationError, PermissionDeniedError
from aw_async.sandbox import SandboxServer, make_booking, seed_demo

from ..cli.test_cli import run as cli
from ..scripted import eventually

ROOT = Path(__file__).resolve().parents[2]


# --- logging --------------------------------------------------------------------------------------


def test_the_library_is_silent_until_the_application_configures_logging(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import asyncio\n"
        "from aw_async import AdultWorkClient\n"
        "from aw_async.sandbox import SandboxServer\n"
        "async def main():\n"
        "    async with SandboxServer() as sandbox:\n"
        "        sandbox.add_token('t', user_id=1)\n"
        "        sandbox.faults.add('server_error', status=503, retry_after='0')\n"
        "        async with AdultWorkClient('t', base_url=sandbox.url) as aw:\n"
        "            print(await aw.credit_history.get_current_credit_balance())\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.0"  # the call was retried after the 503...
    assert done.stderr == ""  # ...and nothing was printed about it: the application did not ask


def test_a_configured_application_sees_the_retry_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("aw_async").handlers)


# --- the sandbox ------------------------------------------------------------------------------------


def test_a_client_that_disconnects_leaves_no_traceback(tmp_path: Path) -> None:
    script = tmp_path / "disconnect.py"
    script.write_text(
        "import asyncio\n"
        "from aw_async.sandbox import SandboxServer\n"
        "async def main():\n"
        "    async with SandboxServer() as sandbox:\n"
        "        sandbox.add_token('t', user_id=1)\n"
        "        port = int(sandbox.url.rsplit(':', 1)[1])\n"
        "        reader, writer = await asyncio.open_connection('127.0.0.1', port)\n"
        "        writer.write(b'POST /v1/PhoneChat/RescheduleMadeBooking HTTP/1.1\\r\\nHost: x\\r\\n'\n"
        "                     b'Authorization: bearer t\\r\\nContent-Length: 100\\r\\n\\r\\n{')\n"
        "        await writer.drain()\n"
        "        writer.transport.abort()\n"
        "        await asyncio.sleep(0.3)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert "ConnectionResetError" not in done.stderr


async def test_make_booking_seeds_a_reschedulable_booking(sandbox: SandboxServer) -> None:
    sandbox.add_token("t", user_id=1)
    sandbox.set_balance(1, Decimal(10))
    sandbox.add_booking(make_booking(42), client_user_id=1)
    sandbox.add_booking(make_booking(43, credits="2.50", comments="later"), client_user_id=1)
    async with AdultWorkClient("t", base_url=sandbox.url) as aw:
        new = await aw.phonechat.reschedule_made_booking(42)
        other = await aw.phonechat.made_booking_details(43)
    assert new.credits == Decimal("8.00")
    assert (other.credits, other.comments) == (Decimal("2.50"), "later")


async def test_an_access_token_can_be_expired_or_revoked(sandbox: SandboxServer) -> None:
    sandbox.set_balance(1, Decimal(3))
    sandbox.add_refresh_token("r1", client_id="app", client_secret="s", user_id=1)
    token = RefreshingToken("app", "s", "r1", token_url=sandbox.token_url)
    async with AdultWorkClient(token, base_url=sandbox.url) as aw:
        await aw.credit_history.get_current_credit_balance()
        first = token.secrets()[0]
        sandbox.expire_token(first)
        await aw.credit_history.get_current_credit_balance()  # a 401, a refresh, once more
        assert token.refreshes == 2
        sandbox.revoke_token(token.secrets()[0])
        sandbox.revoke_token(token.secrets()[1])  # the refresh token too: the user must log in
        with pytest.raises(AuthenticationError, match="log in again"):
            await aw.credit_history.get_current_credit_balance()
    async with AdultWorkClient("static", base_url=sandbox.url) as aw:
        sandbox.add_token("static", user_id=1)
        sandbox.revoke_token("static")
        with pytest.raises(AuthenticationError):
            await aw.credit_history.get_current_credit_balance()


async def test_connections_in_use_is_observable(sandbox: SandboxServer) -> None:
    sandbox.add_token("t", user_id=1)
    sandbox.faults.add("delay", seconds=0.3)
    async with AdultWorkClient("t", base_url=sandbox.url) as aw:
        assert aw.connections_in_use == 0
        call = asyncio.ensure_future(aw.credit_history.get_current_credit_balance())
        await eventually(lambda: aw.connections_in_use == 1)
        await call
        assert aw.connections_in_use == 0


# --- the command line -------------------------------------------------------------------------------


async def test_sandbox_on_a_busy_port_says_so() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await cli("sandbox", "--port", str(port))
    assert code == 1
    assert "Traceback" not in err
    assert f"cannot serve on 127.0.0.1:{port}" in err
    assert "--port 0" in err


async def test_sandbox_serves_the_token_it_is_given() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "aw_async",
        "sandbox",
        "--port",
        "0",
        "--token",
        "my-own-token",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None
    first = (await asyncio.wait_for(process.stdout.readline(), timeout=60)).decode()
    url = first.split(" on ")[1].split()[0]
    try:
        code, out, err = await cli("balance", "--base-url", url, "--token", "my-own-token")
        assert (code, out) == (0, "50.00 credits\n"), err
    finally:
        process.send_signal(2)
        await process.communicate()


async def test_the_plain_http_refusal_names_the_option() -> None:
    code, _, err = await cli("balance", "--base-url", "http://example.com", "--token", "t")
    assert code == 2
    assert "--allow-insecure-http" in err
    assert "allow_insecure_http=True" not in err


async def test_the_base_url_can_come_from_the_environment(sandbox: SandboxServer) -> None:
    demo = seed_demo(sandbox)
    code, out, err = await cli("balance", "--token", demo.token, env={"AW_BASE_URL": sandbox.url})
    assert (code, out) == (0, "50.00 credits\n"), err


async def test_a_403_for_a_group_member_asks_about_membership(sandbox: SandboxServer) -> None:
    demo = seed_demo(sandbox)
    code, _, err = await cli(
        "booking", "201", "--as-user", "9999", "--base-url", sandbox.url, "--token", demo.token
    )
    assert code == 1
    assert "is user 9999 a member of a group you manage?" in err
    async with AdultWorkClient(demo.token, base_url=sandbox.url) as aw:
        with pytest.raises(PermissionDeniedError) as caught:
            await aw.phonechat.made_booking_details(201, as_user=9999)
    assert caught.value.acting_for == 9999


async def test_one_booking_is_one_booking(sandbox: SandboxServer, tmp_path: Path) -> None:
    demo = seed_demo(sandbox)
    code, out, _ = await cli(
        "reschedule", str(demo.passed[0]), "--base-url", sandbox.url, "--token", demo.token, "--no-journal"
    )
    assert code == 0
    assert out.splitlines()[-1] == "1 booking: 1 rescheduled, 0 failed"


async def test_an_ids_file_reports_every_bad_line_at_once(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("101\nabc\n０\n0\n12345678901234567890123\n102 # fine\n-5\n")
    code, _, err = await cli("reschedule", "--from-file", str(ids), "--token", "t")
    assert code == 2
    for number in (2, 3, 4, 5, 7):
        assert f"line {number}:" in err
    assert "line 1:" not in err
    assert "line 6:" not in err
    assert "5 bad lines" in err


@pytest.mark.parametrize("command", ["booking", "reschedule"])
async def test_money_looks_the_same_in_both_formats(sandbox: SandboxServer, command: str) -> None:
    demo = seed_demo(sandbox)
    sandbox.add_booking(make_booking(300, credits="6"), client_user_id=demo.user_id)
    shown = []
    for format in ("json", "xml"):
        args = [
            command,
            "300",
            "--format",
            format,
            "--base-url",
            sandbox.url,
            "--token",
            demo.token,
            "--json",
        ]
        if command == "reschedule":
            args += ["--no-journal", "--force"]
        code, out, err = await cli(*args)
        assert code == 0, err
        document = json.loads(out if command == "booking" else out.splitlines()[0])
        shown.append(document["credits"] if command == "booking" else document["booking"]["credits"])
        code, out, _ = await cli(*[a for a in args if a != "--json"])
        assert "6.00 credits" in out
    assert shown == ["6.00", "6.00"]
