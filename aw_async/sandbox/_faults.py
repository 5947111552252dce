"""Faults the sandbox can be told to inject, so that clients can be tested against a bad day.

>>> sandbox.faults.latency = 0.2                              # doctest: +SKIP
>>> sandbox.faults.add("rate_limit", retry_after=2)           # the next request gets a 429
>>> sandbox.faults.add("reset", method="POST", when="after")  # processed, then the line drops

Kinds: ``rate_limit`` and ``server_error`` (an answer), ``answer`` (any ``status``, ``body`` and
``content_type``: an empty 200, a proxy's HTML page with a 200), ``reset`` (no answer), ``truncate`` (a body
shorter than its Content-Length), ``reset_body`` (a reset in the middle of the body), ``slow_body``
(a pause mid-body), ``delay`` (a pause before the headers).

A fault applies to the next matching request(s) (``times``), in the order added. ``when`` is
``"before"`` (the request is not processed: nothing happened) or ``"after"`` (it was processed,
then the answer is lost: the case a client must report as "outcome unknown").
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["Fault", "FaultKind", "Faults"]

FaultKind = Literal[
    "rate_limit", "server_error", "answer", "reset", "reset_body", "truncate", "slow_body", "delay"
]
_KINDS = ("rate_limit", "server_error", "answer", "reset", "reset_body", "truncate", "slow_body", "delay")


@attrs.define
class Fault:
    """One fault, waiting for the requests it applies to."""

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    """A path the request's must contain (case-insensitive), e.g. ``RescheduleMadeBooking``."""
    times: int = 1
    when: Literal["before", "after"] = "before"
    status: int = 500
    retry_after: str | None = "1"
    """The ``Retry-After`` of a ``rate_limit`` or ``server_error`` (seconds, or an HTTP date)."""
    seconds: float = 1.0
    """How long a ``delay`` holds the answer back, or a ``slow_body`` pauses mid-body."""
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    """The body and Content-Type of an ``answer``."""
    headers: dict[str, str] = attrs.field(factory=dict)
    """More headers of an ``answer`` (a ``Set-Cookie``, an echoed header)."""
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path is None or self.path.lower() in path.lower()
        )


class Faults:
    """The faults waiting in one sandbox."""

    def __init__(self) -> None:
        #: Seconds every answer waits before it is sent.
        self.latency = 0.0
        self._waiting: list[Fault] = []

    def add(self, kind: FaultKind, **options: object) -> Fault:
        """Queue a fault (see :class:`Fault` for the options); returns it, to read ``hits``."""
        if kind not in _KINDS:
            raise ValueError(f"unknown fault {kind!r}; the faults are {', '.join(_KINDS)}")
        fault = Fault(kind, **options)  # type: ignore[arg-type]
        self._waiting.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every waiting fault and the latency."""
        self._waiting.clear()
        self.latency = 0.0

    def take(self, method: str, path: str) -> Fault | None:
        """The first waiting fault for this request, used once."""
        for fault in self._waiting:
            if fault.matches(method, path):
                fault.hits += 1
                if fault.hits >= fault.times:
                    self._waiting.remove(fault)
                return fault
        return None
