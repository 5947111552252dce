"""A scripted AdultWork API for unit tests, on aioresponses: real codec-encoded bodies, recorded
requests, and per-request answers chosen by a test."""

from __future__ import annotations

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
from aioresponses import CallbackResult, aioresponses

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import ErrorBody, MadeBooking

from .seed_values import SEED_JSON_BOOKING

TOKEN = "test-access-token-5f0e"
API_KEY = "test-api-key-77c1"

CODECS = {"json": JsonCodec(), "xml": XmlCodec()}
MEDIA = {"json": "application/json; charset=utf-8", "xml": "application/xml; charset=utf-8"}

DETAILS = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/(Groups/)?PhoneChat/MadeBookingDetails\?.*$")
BALANCE = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/CreditHistory/GetCurrentCreditBalance.*$")
RESCHEDULE = re.compile(r"^https://api-sandbox\.adultwork\.com/v1/PhoneChat/RescheduleMadeBooking.*$")


def past_booking(booking_id: int, credits: str = "8", **changes: Any) -> MadeBooking:
    """The seed's booking with another id and credits, its session an hour ago (UTC)."""
    changes = {"session_date": datetime.now(UTC) - timedelta(hours=1), **changes}
    return attrs.evolve(SEED_JSON_BOOKING, booking_id=booking_id, credits=Decimal(credits), **changes)


Handler = Callable[..., CallbackResult | Awaitable[CallbackResult]]


def answer(value: object, *, status: int = 200, format: str = "json", **headers: str) -> CallbackResult:
    """A response carrying ``value`` encoded as the server would in ``format``."""
    return CallbackResult(
        status=status,
        body=CODECS[format].encode(value),
        content_type=MEDIA[format].split(";")[0],
        headers={"Content-Type": MEDIA[format], **headers},
    )


def error(status: int, message: str = "An error has occurred.", *, format: str = "json", **headers: str):  # type: ignore[no-untyped-def]
    return answer(ErrorBody(message=message), status=status, format=format, **headers)


@dataclass
class ScriptedApi:
    """Bookings, a balance, and the requests seen; answers in the format each request asked for."""

    mocked: aioresponses
    bookings: dict[int, MadeBooking] = field(default_factory=dict)
    balance: Decimal = Decimal("100")
    next_id: int = 1000
    seen: list[tuple[str, str]] = field(default_factory=list)
    #: Overrides per (method, booking id): a function giving the answer instead of the normal one.
    overrides: dict[tuple[str, int], Callable[[], CallbackResult]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Each route calls a handler attribute, so a test can replace or wrap one (sync or async).
        self.on_details: Handler = self.details
        self.on_balance: Handler = self.balance_answer
        self.on_reschedule: Handler = self.reschedule
        self.mocked.get(DETAILS, callback=self._route("on_details"), repeat=True)
        self.mocked.get(BALANCE, callback=self._route("on_balance"), repeat=True)
        self.mocked.post(RESCHEDULE, callback=self._route("on_reschedule"), repeat=True)

    def _route(self, name: str) -> Callable[..., Awaitable[CallbackResult]]:
        async def route(url: Any, **kwargs: Any) -> CallbackResult:
            result = getattr(self, name)(url, **kwargs)
            return await result if inspect.isawaitable(result) else result

        return route

    def add(self, *bookings: MadeBooking) -> None:
        for booking in bookings:
            self.bookings[booking.booking_id] = booking

    def count(self, method: str, operation: str) -> int:
        return sum(1 for m, path in self.seen if m == method and path.endswith(operation))

    @staticmethod
    def _format(kwargs: dict[str, Any]) -> str:
        return "xml" if "xml" in kwargs["headers"].get("Accept", "") else "json"

    def details(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.seen.append(("GET", urlsplit(str(url)).path))
        booking_id = int(parse_qs(urlsplit(str(url)).query)["BookingID"][0])
        if ("GET", booking_id) in self.overrides:
            return self.overrides["GET", booking_id]()
        booking = self.bookings.get(booking_id)
        if booking is None:
            return error(404, "No booking with that id.", format=self._format(kwargs))
        return answer(booking, format=self._format(kwargs))

    def balance_answer(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.seen.append(("GET", urlsplit(str(url)).path))
        return answer(self.balance, format=self._format(kwargs))

    def reschedule(self, url: Any, **kwargs: Any) -> CallbackResult:
        self.seen.append(("POST", urlsplit(str(url)).path))
        booking_id = json.loads(kwargs["data"])["BookingID"]
        if ("POST", booking_id) in self.overrides:
            return self.overrides["POST", booking_id]()
        booking = self.bookings.get(booking_id)
        if booking is None:
            return error(404, "No booking with that id.", format=self._format(kwargs))
        self.balance -= booking.credits
        self.next_id += 1
        new = attrs.evolve(
            booking, booking_id=self.next_id, session_date=datetime.now(UTC) + timedelta(minutes=7)
        )
        self.bookings[new.booking_id] = new
        return answer(new, format=self._format(kwargs))


async def eventually(condition: Callable[[], bool], *, tries: int = 3000, step: float = 0.01) -> None:
    """Wait until ``condition()`` holds, looking every ``step`` seconds, ``tries`` times at most."""
    import asyncio

    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"still not true after {tries} looks")
