"""A scripted AdultWork API for unit tests, on :class:`aw_async.testing.MockTransport`: real
codec-encoded bodies, every request recorded, and per-request answers chosen by a test. Also the
suite's shared helpers: :func:`past_booking` and :func:`eventually`."""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs

from aw_async import AdultWorkClient
from aw_async.models import MadeBooking
from aw_async.testing import MockTransport, Request, Response, VirtualClock

from .answers import answer, error, format_asked
from .seed_values import SEED_JSON_BOOKING

TOKEN = "test-access-token-5f0e"

DETAILS = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/(Groups/)?PhoneChat/MadeBookingDetails\?.*$")
BALANCE = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/CreditHistory/GetCurrentCreditBalance.*$")
RESCHEDULE = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/PhoneChat/RescheduleMadeBooking.*$")


def past_booking(booking_id: int, credits: str = "8", **changes: Any) -> MadeBooking:
    """The seed's booking with another id and credits, its session an hour ago (UTC)."""
    changes = {"session_date": datetime.now(UTC) - timedelta(hours=1), **changes}
    return attrs.evolve(SEED_JSON_BOOKING, booking_id=booking_id, credits=Decimal(credits), **changes)


#: Answers one request of a route: a Response, or one to await; raising fails the try as the network
#: would (``aiohttp.ServerDisconnectedError()``: the request may have been processed).
Handler = Callable[[Request], Response | Awaitable[Response]]


@dataclass
class ScriptedApi:
    """Bookings, a balance, and the requests seen; answers in the format each request asked for.

    Its clients (:meth:`client`) send through :attr:`transport`, and wait on :attr:`clock`. Every
    request is recorded in :attr:`seen` as (method, path) before it is answered, whoever answers it;
    one no route serves is refused as a closed port would refuse it (never sent: the client may try it
    again), so it can never pass for an answer of the server's.
    """

    bookings: dict[int, MadeBooking] = field(default_factory=dict)
    balance: Decimal = Decimal("100")
    next_id: int = 1000
    seen: list[tuple[str, str]] = field(default_factory=list)
    #: Overrides per (method, booking id): a function giving the answer instead of the normal one.
    overrides: dict[tuple[str, int], Callable[[], Response]] = field(default_factory=dict)
    clock: VirtualClock = field(default_factory=VirtualClock)

    def __post_init__(self) -> None:
        # Each route calls a handler attribute, so a test can replace or wrap one (sync or async).
        self.on_details: Handler = self.details
        self.on_balance: Handler = self.balance_answer
        self.on_reschedule: Handler = self.reschedule
        self.transport = MockTransport(self._route)

    def client(self, **kwargs: Any) -> AdultWorkClient:
        """A client with :data:`TOKEN` that sends to this API (``kwargs`` as AdultWorkClient takes them)."""
        return AdultWorkClient(TOKEN, transport=self.transport, clock=self.clock, **kwargs)

    async def _route(self, request: Request) -> Response:
        self.seen.append((request.method, urlsplit(request.url).path))
        routes = {
            "GET": ((DETAILS, "on_details"), (BALANCE, "on_balance")),
            "POST": ((RESCHEDULE, "on_reschedule"),),
        }
        for pattern, name in routes.get(request.method, ()):
            if pattern.match(request.url):
                result = getattr(self, name)(request)
                return await result if inspect.isawaitable(result) else result
        raise ConnectionRefusedError(f"no route for {request.method} {request.display_url}")

    def add(self, *bookings: MadeBooking) -> None:
        for booking in bookings:
            self.bookings[booking.booking_id] = booking

    def count(self, method: str, operation: str) -> int:
        return sum(1 for m, path in self.seen if m == method and path.endswith(operation))

    def details(self, request: Request) -> Response:
        booking_id = int(parse_qs(urlsplit(request.url).query)["BookingID"][0])
        if ("GET", booking_id) in self.overrides:
            return self.overrides["GET", booking_id]()
        booking = self.bookings.get(booking_id)
        if booking is None:
            return error(404, "No booking with that id.", format=format_asked(request))
        return answer(booking, format=format_asked(request))

    def balance_answer(self, request: Request) -> Response:
        return answer(self.balance, format=format_asked(request))

    def reschedule(self, request: Request) -> Response:
        assert request.body is not None
        booking_id = json.loads(request.body)["BookingID"]
        if ("POST", booking_id) in self.overrides:
            return self.overrides["POST", booking_id]()
        booking = self.bookings.get(booking_id)
        if booking is None:
            return error(404, "No booking with that id.", format=format_asked(request))
        self.balance -= booking.credits
        self.next_id += 1
        new = attrs.evolve(
            booking, booking_id=self.next_id, session_date=datetime.now(UTC) + timedelta(minutes=7)
        )
        self.bookings[new.booking_id] = new
        return answer(new, format=format_asked(request))


async def eventually(condition: Callable[[], bool], *, tries: int = 3000, step: float = 0.01) -> None:
    """Wait until ``condition()`` holds, looking every ``step`` seconds, ``tries`` times at most."""
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still not true after {tries} looks")
