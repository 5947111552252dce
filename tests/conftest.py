"""Shared test setup: hypothesis profiles and the recorded sample bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import Mock, patch

import aiohttp
import pytest
from aioresponses import aioresponses
from hypothesis import HealthCheck, settings

from aw_async import _transport

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


# --- aioresponses on aiohttp 3.14 -----------------------------------------------------------------
# aioresponses 0.7.9 builds ClientResponse without the `stream_writer` argument aiohttp 3.14 requires
# (https://github.com/pnuckowski/aioresponses/issues/289, fix pending in PR #288). aiohttp reads only
# `stream_writer.output_size`. Remove this once a fixed aioresponses is released; do not pin aiohttp
# below 3.14 (a security release) instead.


class CompatClientResponse(aiohttp.ClientResponse):
    """A ClientResponse that supplies the `stream_writer` aioresponses does not pass."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", Mock(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture
def mock_api() -> Iterator[aioresponses]:
    """aioresponses, patched to work on aiohttp 3.14: scripted answers, recorded requests."""
    with patch("aioresponses.core.ClientResponse", CompatClientResponse), aioresponses() as mocked:
        yield mocked


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The transport's retry waits, recorded instead of waited."""
    waited: list[float] = []

    async def record(seconds: float) -> None:
        waited.append(seconds)

    monkeypatch.setattr(_transport, "_sleep", record)
    return waited


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
