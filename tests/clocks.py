"""Clocks a test moves by hand: a wall clock that can step, and a host clock that never does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aw_async._clock import HostInstant
from aw_async.journal import Clocks


class ManualClocks:
    """``advance`` moves time on; ``step_wall`` moves only the wall clock (NTP, a user, a VM)."""

    def __init__(self, wall: datetime | None = None) -> None:
        self.wall = wall or datetime.now(UTC)
        self.host = 1_000.0

    def clocks(self) -> Clocks:
        return Clocks(wall=lambda: self.wall, host=lambda: HostInstant("a-test-boot", self.host))

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.host += seconds

    def step_wall(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
