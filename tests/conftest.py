"""Shared test setup: hypothesis profiles, the recorded sample bodies, a virtual clock, and the sandbox
a test runs against (one fixture for every module, seeded as the module's ``sandbox`` marker says)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from aw_async.sandbox import SandboxServer
from aw_async.testing import VirtualClock

from . import children

FIXTURES = Path(__file__).parent / "fixtures"

# No deadline: these machines are shared and noisy, and a wall-clock limit would make tests flaky.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")

# Threads hand work to one another all through the suite (the journal's writer, the CLI's sandbox,
# to_thread): one that is woken waits for the GIL until the running thread gives it up, up to the
# switch interval (5 ms by default) each time. A shorter one makes each hand-over cheaper.
sys.setswitchinterval(0.0005)

# --- property tests: a quick budget by default, the full one under -m slow ---------------------------
# A @given test that keeps hypothesis's default budget runs twice over: [quick], QUICK_EXAMPLES
# examples, in the default run (a maintainer's, often), and [full], the default budget, under -m slow
# (.ci/run). Tests that chose a budget of their own, and tests marked slow already, run as they are.
QUICK_EXAMPLES = 20


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    test = metafunc.function
    if not getattr(test, "is_hypothesis_test", False) or metafunc.definition.get_closest_marker("slow"):
        return
    if test._hypothesis_internal_use_settings.max_examples != settings.default.max_examples:
        return  # a budget of its own
    budgets = [
        pytest.param(QUICK_EXAMPLES, id="quick"),
        pytest.param(None, id="full", marks=pytest.mark.slow),
    ]
    metafunc.parametrize("_examples", budgets, indirect=True)


@pytest.fixture(autouse=True)
def _examples(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A property test's budget, when it runs twice over (see above)."""
    budget = getattr(request, "param", None)
    if budget is not None:
        test = request.function
        chosen = settings(test._hypothesis_internal_use_settings, max_examples=budget)
        monkeypatch.setattr(test, "_hypothesis_internal_use_settings", chosen)


def fixture_bytes(name: str) -> bytes:
    """The bytes of a recorded body in tests/fixtures/."""
    return (FIXTURES / name).read_bytes()


@pytest.fixture
def seed_json() -> bytes:
    """The vendor's JSON response sample, with its missing comma restored."""
    return fixture_bytes("made_booking.json")


@pytest.fixture
def seed_xml() -> bytes:
    """The vendor's XML response sample, with its two missing closing slashes restored."""
    return fixture_bytes("made_booking.xml")


@pytest.fixture
def clock() -> VirtualClock:
    """Time for a client (``clock=clock``): every wait is recorded in ``clock.sleeps`` and passes at once."""
    return VirtualClock()


# --- the sandbox ------------------------------------------------------------------------------------
# One fixture for every module that runs against a SandboxServer on loopback. What differs between
# modules (the token and its user, the balance, the bookings, the server's class) is said by a marker,
# on the module (`pytestmark`) or on a test (the closest one wins, whole):
#
#     pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, balance="20.00", seed=add_bookings)
#
# token/user/group_members: add_token(token, user_id=user, group_members=...); balance: set_balance(user,
# Decimal(balance)); seed: called with the server last (bookings, faults, more tokens), its result kept
# for the `seeded` fixture; server: the class to start (a SandboxServer subclass). No marker: a bare server.
SANDBOX_OPTIONS = frozenset({"token", "user", "group_members", "balance", "seed", "server"})
SEEDED = pytest.StashKey[object]()


def sandbox_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The closest ``sandbox`` marker's options, checked: a misspelt one fails the test."""
    marker = request.node.get_closest_marker("sandbox")
    options = dict(marker.kwargs) if marker else {}
    if marker and marker.args:
        raise TypeError("pytest.mark.sandbox takes keyword options only")
    if unknown := set(options) - SANDBOX_OPTIONS:
        raise TypeError(
            f"pytest.mark.sandbox: unknown options {sorted(unknown)}; known: {sorted(SANDBOX_OPTIONS)}"
        )
    return options


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[SandboxServer]:
    """A :class:`SandboxServer` on loopback, seeded as the ``sandbox`` marker says (see above)."""
    options = sandbox_options(request)
    server_class: type[SandboxServer] = options.get("server", SandboxServer)
    async with server_class() as server:
        if "token" in options:
            server.add_token(
                options["token"], user_id=options["user"], group_members=options.get("group_members", ())
            )
        if "balance" in options:
            server.set_balance(options["user"], Decimal(options["balance"]))
        seed: Callable[[SandboxServer], object] | None = options.get("seed")
        request.node.stash[SEEDED] = seed(server) if seed else None
        yield server


@pytest.fixture
def seeded(request: pytest.FixtureRequest, sandbox: SandboxServer) -> object:
    """What the ``sandbox`` marker's ``seed`` returned (``seed_demo``'s DemoData, say)."""
    return request.node.stash[SEEDED]


# --- no process outlives its test ------------------------------------------------------------------
# A test that starts a process must end it, in a finally or a fixture, failing or not: a child left
# running holds ports, journals and CPU for the rest of the run. Only after a test that started one is
# /proc scanned (tests/children.py).
children.watch()
_WATCH = children.Watch()


@pytest.fixture(autouse=True)
def _no_child_left_running() -> Iterator[None]:
    _WATCH.before_test()
    yield
    if left := _WATCH.after_test():
        listed = "; ".join(f"{pid}: {command}" for pid, command in sorted(left.items()))
        pytest.fail(f"the test left {len(left)} child process(es) running (now killed): {listed}")


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the command line keeps its journal by default: a folder of the test's own, never the
    developer's home (and never shared between tests)."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("AW_ASYNC_JOURNAL", raising=False)
    return home


# A real PostgreSQL (tests/postgres.py): `postgres_server` for the session, `postgres_dsn` per test.
from .postgres import postgres_dsn, postgres_server  # noqa: E402, F401
