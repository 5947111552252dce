"""aw_async.testing: the in-memory transport and the virtual clock that tests of aw_async (and of
applications that use it) build on."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from decimal import Decimal
from types import SimpleNamespace

import pytest

from aw_async import AdultWorkClient
from aw_async.errors import OutcomeUnknownError, TransportError
from aw_async.testing import ExchangeError, MockTransport, Request, Response, SendFailure, VirtualClock
from aw_async.testing.pytest_plugin import pytest_configure

from ..answers import answer


def test_importing_it_is_cheap() -> None:
    code = (
        "import sys, aw_async.testing; "
        "print(sorted(m for m in ('aiohttp.web', 'aw_async.sandbox', 'opentelemetry') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


_PLUGIN_LOADED = """
import sys, types, pytest
before = set(sys.modules)
from aw_async.testing import pytest_plugin
manager = types.SimpleNamespace(has_plugin=lambda name: True, register=lambda plugin, name: None)
pytest_plugin.pytest_configure(types.SimpleNamespace(pluginmanager=manager))  # as pytest configures it
print(sorted(set(sys.modules) - before))
"""


def test_the_pytest_plugin_loads_nothing_heavy_until_a_fixture_is_used() -> None:
    # pytest loads it (pytest11) in every run wherever aw-async is installed, aw_async's tests or not:
    # it once pulled in aiohttp, aiohttp.web, lxml, cattrs and msgspec there, 0.3 to 0.4 s a run.
    done = subprocess.run([sys.executable, "-c", _PLUGIN_LOADED], capture_output=True, text=True, check=True)
    loaded = set(ast.literal_eval(done.stdout))
    ours = {name for name in loaded if name.split(".")[0] == "aw_async"}
    assert ours == {"aw_async", "aw_async._version", "aw_async.testing", "aw_async.testing.pytest_plugin"}
    heavy = {"aiohttp", "lxml", "msgspec", "cattrs", "cattr", "attr", "attrs", "asyncpg", "opentelemetry"}
    assert not {name.split(".")[0] for name in loaded} & heavy


async def test_a_handler_may_be_async_and_every_request_is_kept() -> None:
    async def handler(request: Request) -> Response:
        await asyncio.sleep(0)
        return answer(Decimal("2.5"))

    transport = MockTransport(handler)
    async with AdultWorkClient("t", transport=transport) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal("2.5")
        assert await aw.credit_history.get_current_credit_balance() == Decimal("2.5")
    assert [request.method for request in transport.requests] == ["GET", "GET"]


@pytest.mark.parametrize(
    ("failure", "get_tries", "post_error"),
    [(SendFailure.NOT_SENT, 3, TransportError), (SendFailure.OUTCOME_UNKNOWN, 3, OutcomeUnknownError)],
)
async def test_a_handler_may_raise_an_exchange_error_that_says_whether_the_request_left(
    clock: VirtualClock, failure: SendFailure, get_tries: int, post_error: type[TransportError]
) -> None:
    def handler(request: Request) -> Response:
        raise ExchangeError(failure, "the line went dead")

    transport = MockTransport(handler)
    async with AdultWorkClient("t", transport=transport, clock=clock) as aw:
        with pytest.raises(TransportError, match="the line went dead"):
            await aw.credit_history.get_current_credit_balance()
        assert len(transport.requests) == get_tries
        with pytest.raises(post_error) as caught:
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert type(caught.value) is post_error
    posts = [request for request in transport.requests if request.method == "POST"]
    assert len(posts) == (3 if failure is SendFailure.NOT_SENT else 1)  # a POST that may have left: once


async def test_the_virtual_clock_wakes_sleepers_in_the_order_of_their_deadlines() -> None:
    clock = VirtualClock()
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append((name, clock.now()))

    await asyncio.gather(sleeper("late", 3.0), sleeper("early", 1.0), sleeper("middle", 2.0))
    assert woke == [("early", 1.0), ("middle", 2.0), ("late", 3.0)]
    assert clock.sleeps == [3.0, 1.0, 2.0]


async def test_a_cancelled_sleeper_does_not_hold_the_clock() -> None:
    clock = VirtualClock()
    doomed = asyncio.ensure_future(clock.sleep(100.0))
    await asyncio.sleep(0)
    doomed.cancel()
    await clock.sleep(1.0)
    assert clock.now() == 1.0


def test_without_pytest_asyncio_the_plugins_fixtures_say_what_to_install() -> None:
    # In-process: the plugin as pytest configures it with pytest-asyncio absent or disabled. (A real
    # pytest without it, on the README's example: tests/docs/test_readme.py, under -m slow.)
    registered: list[object] = []
    manager = SimpleNamespace(has_plugin=lambda name: False, register=lambda p, name: registered.append(p))
    pytest_configure(SimpleNamespace(pluginmanager=manager))  # type: ignore[arg-type]
    (fixtures,) = registered
    for name in ("aw_sandbox", "aw_client"):
        with pytest.raises(pytest.fail.Exception, match="need pytest-asyncio: pip install pytest-asyncio"):
            getattr(type(fixtures), name).__wrapped__(fixtures)
