"""A newcomer's first hour: a silent logger, fixtures that explain themselves, a sandbox that refuses
a colliding id. (The command line's part of that hour: tests/cli/test_cli_newcomer.py.)"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from aw_async import AdultWorkClient, RefreshingToken
from aw_async.errors import AuthenticationError
from aw_async.sandbox import SandboxServer, make_booking

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
