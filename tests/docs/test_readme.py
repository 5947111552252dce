"""The README's examples, run against the sandbox: documentation that cannot rot."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from functools import partial
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from aw_async import AdultWorkClient
from aw_async.sandbox import DemoData, SandboxServer, seed_demo
from aw_async.testing import VirtualClock

from ..readme_examples import example, example_source
from ..scripted import past_booking

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_two_commands_are_at_the_very_top() -> None:
    head = README.read_text().split("\n## ")[0]
    assert "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/aw-async demo" in head
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/pytest" in head


pytestmark = pytest.mark.sandbox(seed=seed_demo)


async def test_the_web_backend_example(sandbox: SandboxServer, seeded: DemoData) -> None:
    server, demo = sandbox, seeded
    app = example("web")["make_app"](demo.token, base_url=server.url)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            async with http.post(f"/bookings/{demo.passed[0]}/reschedule") as response:
                assert response.status == 200
                assert (await response.json())["booking_id"] in server.rescheduled(demo.passed[0])
            async with http.post(f"/bookings/{demo.upcoming}/reschedule") as response:
                assert response.status == 409
                assert "has not passed" in await response.text()
            async with http.post("/bookings/999/reschedule") as response:
                assert response.status == 404
            async with http.post("/bookings/abc/reschedule") as response:
                assert response.status == 404  # not a 500
            async with http.post(f"/bookings/{demo.passed[0]}/reschedule") as response:
                assert response.status == 409  # a second click: nothing sent
                assert "already rescheduled" in await response.text()
            server.faults.add("reset", method="POST", when="after")
            async with http.post(f"/bookings/{demo.passed[1]}/reschedule") as response:
                assert response.status == 504
    finally:
        await runner.cleanup()


async def test_the_batch_example(
    sandbox: SandboxServer, seeded: DemoData, capsys: pytest.CaptureFixture[str]
) -> None:
    server, demo = sandbox, seeded
    server.add_token("second-account", user_id=3003)
    server.set_balance(3003, Decimal(100))
    for booking_id in (501, 502, 503):
        server.add_booking(past_booking(booking_id, credits="10"), client_user_id=3003)
    # One POST is processed and answered with a 504: it went through, and the list must say it may have.
    server.faults.add("server_error", status=504, method="POST", path="RescheduleMadeBooking", when="after")
    run = example("batch")["reschedule_everything"]
    code = await run(
        # 501 twice: one outcome per distinct id, and the progress counter reaches its total
        {demo.token: [*demo.passed, demo.upcoming], "second-account": [501, 502, 501, 503]},
        base_url=server.url,
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "7 rescheduled, 2 failed" in captured.out
    assert f"{demo.upcoming}: booking {demo.upcoming} cannot be rescheduled yet" in captured.out
    listed = re.search(
        r"these may have gone through; a re-run reconciles them first: \[(\d+)\]", captured.out
    )
    assert listed is not None, captured.out
    assert server.reschedule_count(int(listed[1])) == 1  # the 504 came after the reschedule
    assert "3/3 bookings" in captured.err  # the second account's three distinct ids, all counted


async def test_the_chat_bot_example(
    sandbox: SandboxServer, seeded: DemoData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, demo = sandbox, seeded
    monkeypatch.chdir(tmp_path)
    server.add_refresh_token("initial", client_id="my-bot", client_secret="bot-secret", user_id=demo.user_id)
    (tmp_path / "adultwork-tokens.json").write_text('{"refresh_token": "initial"}')
    bot = example("bot")
    async with bot["make_client"](
        "my-bot", "bot-secret", base_url=server.url, token_url=server.token_url
    ) as aw:
        assert await bot["on_message"](aw, "/balance") == "You have 50.00 credits."
        answer = await bot["on_message"](aw, f"/reschedule {demo.passed[0]}")
        assert answer.startswith("Done: booking ")
        assert (await bot["on_message"](aw, f"/reschedule {demo.upcoming}")).startswith("Not now: booking")
        assert await bot["on_message"](aw, "hello") == "Try /balance or /reschedule <booking id>."
    stored = (tmp_path / "adultwork-tokens.json").read_text()
    assert "initial" not in stored  # the rotated refresh token was persisted
    assert list(server.state.refresh_tokens) == [stored.split('"')[3]]


async def test_the_sandbox_example(clock: VirtualClock) -> None:
    tour = example("sandbox")
    # The tour's 429 asks for a second's wait: its client is given a virtual clock, through the name
    # the example looks the class up by, in the namespace this test ran it in (nothing global).
    tour["AdultWorkClient"] = partial(AdultWorkClient, clock=clock)
    await tour["sandbox_tour"]()
    assert clock.sleeps[:1] == [1.0]  # the 429's Retry-After, waited out before the request went again


def test_the_pytest_example_runs_in_a_fresh_project_in_strict_mode(tmp_path: Path) -> None:
    """As a user would have it: a project of its own, pytest-asyncio's default configuration."""
    (tmp_path / "test_mine.py").write_text(example_source("pytest"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=strict"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


# A second pytest in a process of its own costs seconds: the default run checks the same in-process
# (tests/sandbox/test_testing.py), this one runs under -m slow.
@pytest.mark.slow
def test_the_pytest_example_without_pytest_asyncio_says_what_to_install(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(example_source("pytest"))
    without = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert without.returncode != 0
    assert "need pytest-asyncio: pip install pytest-asyncio" in without.stdout


async def test_the_chat_bot_example_when_the_save_fails_and_after_a_lost_token(
    sandbox: SandboxServer, seeded: DemoData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, demo = sandbox, seeded
    monkeypatch.chdir(tmp_path)
    server.add_refresh_token("initial", client_id="my-bot", client_secret="bot-secret", user_id=demo.user_id)
    (tmp_path / "adultwork-tokens.json").write_text('{"refresh_token": "initial"}')
    bot = example("bot")

    async def disk_full(tokens: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(bot, "save", disk_full)  # make_client reads `save` from its module
    async with bot["make_client"](
        "my-bot", "bot-secret", base_url=server.url, token_url=server.token_url
    ) as aw:
        assert await bot["on_message"](aw, "/balance") == (
            "I could not save your login; I will try again with your next message."
        )
    # A restart: the file still holds the replaced token, which the server no longer takes.
    async with bot["make_client"](
        "my-bot", "bot-secret", base_url=server.url, token_url=server.token_url
    ) as aw:
        assert await bot["on_message"](aw, "/balance") == "Your login has expired: please log in again."


async def test_the_lifecycle_example(sandbox: SandboxServer, seeded: DemoData) -> None:
    from aw_async import CallMethod
    from aw_async.models import PhoneChatMethod, UserBookingRequirements

    server, demo = sandbox, seeded
    performer = 123456
    server.set_requirements(
        performer,
        UserBookingRequirements(
            phone_chat_ppm=Decimal("1.20"), methods=(PhoneChatMethod(method=CallMethod.CALLED_BY_CANDIDATE),)
        ),
    )
    before = {b.booking_id for b in server.bookings_of(demo.user_id)}
    recent = await example("lifecycle")["book_and_cancel"](demo.token, performer, base_url=server.url)
    created = [b for b in server.bookings_of(demo.user_id) if b.booking_id not in before]
    assert len(created) == 1
    assert created[0].status == "Cancelled"
    assert set(recent) <= before | {created[0].booking_id}


async def test_the_journal_example(sandbox: SandboxServer, seeded: DemoData, tmp_path: Path) -> None:
    server, demo = sandbox, seeded
    journal = str(tmp_path / "journal.sqlite3")
    first = await example("journal")["reschedule_what_passed"](demo.token, journal, base_url=server.url)
    assert first["rescheduled"] >= 1
    assert first["may have"] == 0
    again = await example("journal")["reschedule_what_passed"](demo.token, journal, base_url=server.url)
    assert again["rescheduled"] == 0  # a re-run reschedules nothing twice
    assert all(server.reschedule_count(b) <= 1 for b in demo.passed)
