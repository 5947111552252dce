"""The fault matrix: every way the network or the server can misbehave, for a GET and for the
reschedule POST, against a real server on loopback.

For each fault: the error raised, how many requests the server saw (never two POSTs for one
reschedule), no connection left acquired, and (pytest turns every warning into an error) no
unclosed session or socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import attrs
import pytest

from aw_async import AdultWorkClient
from aw_async.errors import (
    AdultWorkError,
    DecodeError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    TransportError,
)
from aw_async.sandbox import SandboxServer
from aw_async.testing import VirtualClock

from ..scripted import past_booking

TOKEN = "fault-matrix-token"
USER = 5
TIMEOUT = 0.5


@attrs.frozen
class Case:
    """A fault, and what a GET and the POST must come to under it."""

    setup: Callable[[SandboxServer, str], object]
    get: type[AdultWorkError] | None  # None: the call succeeds (after retries)
    get_seen: int
    post: type[AdultWorkError] | None
    post_seen: int
    post_processed: bool = False  # the reschedule happened on the server despite the error


def fault(kind: str, **options: Any) -> Callable[[SandboxServer, str], object]:
    return lambda sandbox, method: sandbox.faults.add(kind, method=method, **options)  # type: ignore[arg-type]


def http_date(seconds: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


# max_retries=2: a GET gets 3 tries from us. After a reset before any byte of the answer, aiohttp
# itself tries an idempotent request once more, so the server sees two per try of ours.
CASES = {
    "connection refused": Case(lambda s, m: None, TransportError, 0, TransportError, 0),
    "reset before the answer": Case(fault("reset", times=100), TransportError, 6, OutcomeUnknownError, 1),
    "reset after processing": Case(
        fault("reset", times=100, when="after"),
        TransportError,
        6,
        OutcomeUnknownError,
        1,
        post_processed=True,
    ),
    "reset in the middle of the body": Case(fault("reset_body"), None, 2, OutcomeUnknownError, 1, True),
    "body shorter than its Content-Length": Case(fault("truncate"), None, 2, OutcomeUnknownError, 1, True),
    "headers slower than the timeout": Case(
        fault("delay", seconds=TIMEOUT * 3, when="after"), None, 2, OutcomeUnknownError, 1, True
    ),
    "a slow body": Case(fault("slow_body", seconds=TIMEOUT * 3), None, 2, OutcomeUnknownError, 1, True),
    # A POST is not sent again even after a 429: one call, one POST at most, whatever the server says.
    "429 with Retry-After seconds": Case(fault("rate_limit", retry_after="1"), None, 2, RateLimitError, 1),
    "429 with Retry-After as an HTTP date": Case(
        lambda s, m: s.faults.add("rate_limit", method=m, retry_after=http_date(2)),
        None,
        2,
        RateLimitError,
        1,
    ),
    "500 with an HTML body": Case(fault("server_error", status=500), None, 2, ServerError, 1),
    "502 with an HTML body": Case(fault("server_error", status=502), None, 2, ServerError, 1),
    "503 with an HTML body": Case(
        fault("server_error", status=503, retry_after=None), None, 2, ServerError, 1
    ),
    "a wrong Content-Type": Case(
        fault(
            "answer",
            status=200,
            body=b"<html><title>Checking your browser</title></html>",
            content_type="text/html",
            when="after",
        ),
        DecodeError,
        1,
        DecodeError,
        1,
        True,
    ),
    "an empty 200": Case(fault("answer", status=200, when="after"), DecodeError, 1, DecodeError, 1, True),
}


def one_booking(server: SandboxServer) -> None:
    server.add_booking(past_booking(1, credits="5"), client_user_id=USER)


pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, balance=100, seed=one_booking)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def acquired(aw: AdultWorkClient) -> int:
    return aw.connections_in_use


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_fault(sandbox: SandboxServer, name: str, method: str, clock: VirtualClock) -> None:
    case = CASES[name]
    base_url = sandbox.url if name != "connection refused" else f"http://127.0.0.1:{closed_port()}"
    case.setup(sandbox, method)
    expected = case.get if method == "GET" else case.post
    async with AdultWorkClient(TOKEN, base_url=base_url, timeout=TIMEOUT, max_retries=2, clock=clock) as aw:
        call = (
            aw.phonechat.made_booking_details(1)
            if method == "GET"
            else aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        )
        if expected is None:
            await call
        else:
            with pytest.raises(expected) as caught:
                await call
            assert type(caught.value) is expected
            if expected is TransportError and method == "POST":
                assert "could not be sent" in str(caught.value)  # never left: not "outcome unknown"
        assert acquired(aw) == 0
    seen = [r for r in sandbox.requests if r.method == method]
    assert len(seen) == (case.get_seen if method == "GET" else case.post_seen)
    if method == "POST":
        assert len(seen) <= 1  # never a second POST, whatever the fault
        assert len(sandbox.rescheduled(1)) == (1 if case.post_processed else 0)
    if name.startswith("429"):
        assert len(clock.sleeps) == (1 if method == "GET" else 0)
        assert all(0 < wait <= 2 for wait in clock.sleeps)


async def test_a_post_refused_with_a_429_is_not_sent_again_and_a_later_call_may_send_it(
    sandbox: SandboxServer, clock: VirtualClock
) -> None:
    # One call, one POST: a 429 is raised, the journal records the refusal, and a later call is free.
    sandbox.faults.add("rate_limit", method="POST")
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock) as aw:
        with pytest.raises(RateLimitError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        assert sandbox.rescheduled(1) == []
        await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert len(sandbox.rescheduled(1)) == 1
