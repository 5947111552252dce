"""Clocks that the exactly-once rules can trust, and the ones they must not.

A wall clock (``datetime.now``) dates things for people and for matching the server's
``CreateDate``; it can step (NTP, a user, a VM resumed from a snapshot), so it never measures how long
something took. Durations are measured with :func:`elapsed`, which never steps and, where the system
has one (Linux's ``CLOCK_BOOTTIME``), keeps counting while the machine is suspended: a laptop that
slept an hour has been away an hour. Processes of one host share that clock, so a duration between
two processes' readings is :func:`seconds_between` two :class:`HostInstant` values, as long as the host
did not reboot in between (the boot id tells).
"""

from __future__ import annotations

import sys
import time
from functools import cache

import attrs

__all__ = ["HostInstant", "elapsed", "host_instant", "seconds_between"]

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
