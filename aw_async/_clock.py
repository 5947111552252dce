"""Clocks that the client's rules can trust, and the ones they must not.

A wall clock (``datetime.now``) dates things for people and for matching the server's
``CreateDate``; it can step (NTP, a user, a VM resumed from a snapshot), so it never measures how long
something took. Durations are measured with :func:`elapsed`, which never steps and, where the system
has one (Linux's ``CLOCK_BOOTTIME``), keeps counting while the machine is suspended: a laptop that
slept an hour has been away an hour. Processes of one host share that clock, so a duration between
two processes' readings is :func:`seconds_between` two :class:`HostInstant` values, as long as the host
did not reboot in between (the boot id tells).

Every wait the client makes (a retry's backoff, a closed gate, a paced request) goes through a
:class:`Clock`, and every deadline it keeps (a POST that must leave in time) is read from the same
clock, so the two never disagree. The client is given one (``AdultWorkClient(..., clock=...)``);
:data:`SYSTEM_CLOCK` (:func:`elapsed` and ``asyncio.sleep``) is the default, and
:class:`aw_async.testing.VirtualClock` lets a test or a simulation run hours of waits in no time and
read what was waited.
"""

from __future__ import annotations

import asyncio
import sys
import time
from functools import cache
from typing import Protocol

import attrs

__all__ = [
    "SYSTEM_CLOCK",
    "Clock",
    "HostInstant",
    "SystemClock",
    "elapsed",
    "host_instant",
    "seconds_between",
]

_CLOCK = getattr(time, "CLOCK_BOOTTIME", None)
if _CLOCK is None and sys.platform == "darwin":  # pragma: no cover - macOS: its CLOCK_MONOTONIC counts sleep
    _CLOCK = getattr(time, "CLOCK_MONOTONIC", None)


def elapsed() -> float:
    """Seconds on a clock that never steps and counts time spent suspended where it can."""
    if _CLOCK is not None:
        return time.clock_gettime(_CLOCK)
    return time.monotonic()  # pragma: no cover - a platform without either


@cache
def boot_id() -> str:
    """This boot of the host (Linux), or "" where the system does not say."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            return file.read().strip()
    except OSError:  # pragma: no cover - not Linux
        return ""


@attrs.frozen
class HostInstant:
    """A reading of :func:`elapsed` that another process of the same host can compare with its own."""

    boot: str
    seconds: float


def host_instant() -> HostInstant:
    """Now, as a :class:`HostInstant`."""
    return HostInstant(boot_id(), elapsed())


def seconds_between(earlier: HostInstant, later: HostInstant) -> float | None:
    """How long passed between two readings, or None when it cannot be told (a reboot in between,
    or a system that gives no boot id)."""
    if not earlier.boot or earlier.boot != later.boot:
        return None
    return later.seconds - earlier.seconds


class Clock(Protocol):
    """Seconds that never go back, and a way to let them pass."""

    def now(self) -> float:
        """Seconds on a clock that never goes back (its origin means nothing)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once ``seconds`` have passed on this clock."""
        ...


class SystemClock:
    """The machine's clock that never steps (:func:`elapsed`), and ``asyncio.sleep``."""

    def now(self) -> float:
        return elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The clock of every client that is not given one. One object, so that clients share their gates.
SYSTEM_CLOCK = SystemClock()
