"""Shared test setup: hypothesis profiles, the recorded sample bodies, and a virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock, patch

import aiohttp
import pytest
from aioresponses import aioresponses
from hypothesis import HealthCheck, settings

from aw_async._clock import SystemClock
from aw_async.testing import VirtualClock

FIXTURES = Path(__file__).parent / "fixtures"

# No deadline: these machines are shared and noisy, and a wall-clock limit would make tests flaky.
settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, max_examples=300, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("default")


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


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the command line keeps its journal by default: a folder of the test's own, never the
    developer's home (and never shared between tests)."""
    home = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(home))
    monkeypatch.delenv("AW_ASYNC_JOURNAL", raising=False)
    return home


# --- Legacy, until these modules are converted -----------------------------------------------------
# The modules below build clients without `clock=` and relied on a module global of the transport
# being patched so that retry waits pass at once. That global is gone. Until each of them passes
# `clock=VirtualClock()` (the `clock` fixture) to its clients, the clients' default clock records
# its waits instead of waiting them, for these modules only. Delete this section with the last one.
_WAITS_PATCHED_IN = {
    "test_boundary.py",
    "test_fault_matrix.py",
    "test_hostile_servers.py",
    "test_readme.py",
    "test_secrets.py",
    "test_transport_safety.py",
}


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits of clients on the default clock, recorded instead of waited (legacy: see above)."""
    waited: list[float] = []

    async def record(self: SystemClock, seconds: float) -> None:
        waited.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(SystemClock, "sleep", record)
    return waited


@pytest.fixture(autouse=True)
def _legacy_waits(request: pytest.FixtureRequest) -> None:
    if request.node.path.name in _WAITS_PATCHED_IN:
        request.getfixturevalue("sleeps")


# aioresponses 0.7.9 builds ClientResponse without the `stream_writer` argument aiohttp 3.14 requires
# (https://github.com/pnuckowski/aioresponses/issues/289, fix pending in PR #288), so it works only
# patched. Only tests/phonechat/test_reschedule.py (through tests/scripted.py) still uses it; convert it to
# aw_async.testing.MockTransport, then delete this and drop aioresponses from the test extra.


class CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that supplies the `stream_writer` aioresponses does not pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[aioresponses]:
    """aioresponses, patched to work on aiohttp 3.14 (legacy: see above)."""
    with patch("aioresponses.core.ClientResponse", CompatClientResponse), aioresponses() as mocked:
        yield mocked


# A real PostgreSQL (tests/postgres.py): `postgres_server` for the session, `postgres_dsn` per test.
from .postgres import postgres_dsn, postgres_server  # noqa: E402, F401
