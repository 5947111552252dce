"""``VirtualClock``: time that passes only when something waits, at once, and is written down.

Sleepers wake in the order of their deadlines, each with the clock set to its deadline, once the
event loop has run everything else that was ready (a few turns of the loop), so concurrent waits
interleave as they would in real time: requests a pacer spaces out reach a handler at their own
virtual moments, and a gate's waiters at theirs.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

__all__ = ["VirtualClock"]

# Turns of the event loop given to ready work before the clock moves on: enough for an in-memory
# handler and the client's own awaits between two waits.
_SETTLE_TURNS = 20


class VirtualClock:
    """A :class:`~aw_async._clock.Clock` whose time moves only to wake its sleepers.

    Attributes:
        sleeps: every wait asked for, in seconds, in the order asked.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self.sleeps: list[float] = []
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self._advancing = False

    def __repr__(self) -> str:
        return f"VirtualClock(now={self._now:.3f}, sleepers={len(self._sleepers)})"

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` without anyone waiting (sleepers due meanwhile wake)."""
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        woken = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), woken))
        if not self._advancing:
            self._advancing = True
            asyncio.get_running_loop().call_soon(self._settle, _SETTLE_TURNS)
        await woken

    def _settle(self, turns: int) -> None:
        loop = asyncio.get_running_loop()
        if turns:
            loop.call_soon(self._settle, turns - 1)
            return
        while self._sleepers:
            deadline, _, woken = heapq.heappop(self._sleepers)
            if woken.done():  # its sleeper was cancelled
                continue
            self._now = max(self._now, deadline)
            woken.set_result(None)
            break
        if self._sleepers:
            loop.call_soon(self._settle, _SETTLE_TURNS)
        else:
            self._advancing = False
