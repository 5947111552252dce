"""Shared test setup: hypothesis profiles and the recorded sample bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

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
