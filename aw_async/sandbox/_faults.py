"""Faults the sandbox can be told to inject, so that clients can be tested against a bad day.

>>> sandbox.faults.latency = 0.2                              # doctest: +SKIP
>>> sandbox.faults.add("rate_limit", retry_after=2)           # the next request gets a 429
>>> sandbox.faults.add("reset", method="POST", when="after")  # processed, then the line drops

Kinds: ``rate_limit`` and ``server_error`` (an answer), ``answer`` (any ``status``, ``body`` and
``content_type``: an empty 200, a proxy's HTML page with a 200), ``reset`` (no answer), ``truncate`` (a body
shorter than its Content-Length), ``reset_body`` (a reset in the middle of the body), ``slow_body``
(a pause mid-body), ``delay`` (a pause before the headers).

A fault applies to the next matching request(s) (``times``), in the order added. ``when`` is
``"before"`` (the request is not processed: nothing happened), ``"after"`` (it was processed,
then the answer is lost: the case a client must report as "outcome unknown") or ``"late"`` (the
answer is lost at once, and the request is processed ``seconds`` later: a server that works through
a queue after its gateway gave up).

A :class:`RateLimit` (``SandboxServer.limit_rate``) throttles each token as ASP.NET Web API's
throttling handlers do: a request beyond the rate is not processed, and gets a 429 with a whole
number of seconds in ``Retry-After`` and a Web API error body.
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import time
from collections.abc import Callable
from typing import Literal, get_args

import attrs
from aiohttp import web

from ..models import ErrorBody

__all__ = ["Fault", "FaultKind", "Faults", "RateLimit", "answer_instead", "answer_partly"]

FaultKind = Literal[
    "rate_limit", "server_error", "answer", "reset", "reset_body", "truncate", "slow_body", "delay"
]
_KINDS: tuple[str, ...] = get_args(FaultKind)


@attrs.define
class Fault:
    """One fault, waiting for the requests it applies to."""

    kind: FaultKind
    method: str | None = None
    path: str | None = None
    """A path the request's must contain (case-insensitive), e.g. ``RescheduleMadeBooking``."""
    times: int = 1
    when: Literal["before", "after", "late"] = "before"
    status: int = 500
    retry_after: str | None = "1"
    """The ``Retry-After`` of a ``rate_limit`` or ``server_error`` (seconds, or an HTTP date)."""
    seconds: float = 1.0
    """How long a ``delay`` holds the answer back, a ``slow_body`` pauses mid-body, or a ``"late"``
    request waits before it is processed."""
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


class RateLimit:
    """A token bucket per token: ``burst`` requests at once, refilled at ``per_second``.

    Attributes:
        refused: how many requests it answered with a 429.
    """

    def __init__(self, per_second: float, *, burst: int = 10) -> None:
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"per_second must be a positive number, got {per_second!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        self.per_second = per_second
        self.burst = burst
        self.refused = 0
        self._buckets: dict[str, tuple[float, float]] = {}  # token: (requests left, when counted)

    def retry_after(self, token: str) -> int | None:
        """None if a request with ``token`` may go on now (and count it); else the whole seconds
        until it could."""
        now = time.monotonic()
        left, then = self._buckets.get(token, (float(self.burst), now))
        left = min(float(self.burst), left + (now - then) * self.per_second)
        if left >= 1.0:
            self._buckets[token] = (left - 1.0, now)
            return None
        self._buckets[token] = (left, now)  # a refused request takes nothing from the bucket
        self.refused += 1
        return max(1, math.ceil((1.0 - left) / self.per_second))

    def message(self) -> str:
        """The message of the 429's body, in the words of WebApiThrottle."""
        return f"API calls quota exceeded! maximum admitted {self.per_second:g} per Second."


async def answer_instead(
    request: web.Request, fault: Fault, encode: Callable[[web.Request, object], tuple[bytes, str]]
) -> web.StreamResponse:
    """The answer a fault gives instead of the operation's (or none at all: a reset)."""
    if fault.kind == "reset":
        _reset(request)
        return web.Response(status=500)  # never reaches the client
    if fault.kind == "answer":
        return web.Response(
            status=fault.status,
            body=fault.body,
            headers={"Content-Type": fault.content_type, **fault.headers},
        )
    headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
    if fault.kind == "rate_limit":
        body, content_type = encode(request, ErrorBody(message="Too many requests."))
        return web.Response(status=429, body=body, headers={"Content-Type": content_type, **headers})
    reason = {
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
        504: "Gateway Timeout",
    }.get(fault.status, "Error")
    page = f"<html><head><title>{fault.status} {reason}</title></head><body><h1>{reason}</h1></body></html>"
    return web.Response(
        status=fault.status,
        text=page,
        content_type="text/html",
        headers=headers if fault.status in (429, 503) else {},
    )


async def answer_partly(
    request: web.Request, status: int, body: bytes, content_type: str, fault: Fault
) -> web.StreamResponse:
    """Half the answer, then a close, a reset or a pause (``truncate``, ``reset_body``,
    ``slow_body``)."""
    response = web.StreamResponse(status=status, headers={"Content-Type": content_type})
    response.content_length = len(body)
    await response.prepare(request)
    half = len(body) // 2
    await response.write(body[:half])
    if fault.kind == "truncate":  # the connection closes with half the promised bytes sent
        if request.transport is not None:
            request.transport.close()
        return response
    if fault.kind == "reset_body":  # ...or is reset in the middle of the body
        await asyncio.sleep(0.01)  # let the half body leave first
        _reset(request)
        return response
    await asyncio.sleep(fault.seconds)
    await response.write(body[half:])
    await response.write_eof()
    return response


def _reset(request: web.Request) -> None:
    """Drop the connection with a RST (SO_LINGER 0), as a crashed peer or a middlebox does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
