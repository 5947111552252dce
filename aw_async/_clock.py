"""Time as the client sees it: a monotonic ``now`` and an awaitable ``sleep``.

Every wait the client makes (a retry's backoff, a closed gate, a paced request) goes through a
:class:`Clock`, and every deadline it keeps is read from the same clock, so the two never disagree.
The client is given one (``AdultWorkClient(..., clock=...)``); :data:`SYSTEM_CLOCK` is the default,
and :class:`aw_async.testing.VirtualClock` lets a test or a simulation run hours of waits in no time
and read what was waited.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


class Clock(Protocol):
    """Monotonic seconds, and a way to let them pass."""

    def now(self) -> float:
        """Seconds on a clock that never goes back (its origin means nothing)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class SystemClock:
    """The machine's monotonic clock, and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock of every client that is not given one. One object, so that clients share their gates.
SYSTEM_CLOCK = SystemClock()
