"""A lean stand-in for the API, for the end-to-end benchmarks: answers spliced from bytes encoded once.

    python -m benchmarks._e2e_server PORT_FILE

Every endpoint the benchmarks use answers with a valid body in the format ``Accept`` asks for (JSON
or DataContract XML), encoded once at start by the library's own codecs and split around the parts
that vary, so the server's cost is the same small constant for every client measured against it:

- ``MadeBookingDetails?BookingID=N``: booking N, whose session passed yesterday (8 credits);
- ``GetCurrentCreditBalance``: a balance that covers every booking;
- ``RescheduleMadeBooking`` (a POST of ``{"BookingID": N}``): the new booking, N + :data:`NEW_ID_OFFSET`,
  created now (so a client learns the server's zone offset from it, as it would from the vendor);
- ``MadeBookings``: an empty page (nothing was rescheduled: a reconciliation finds nothing).

Every answer carries a ``Date`` header (aiohttp's server adds it), which the client's server clock
reads. ``GET /_stats`` returns and resets the request counts per method.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs
from aiohttp import web

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import MadeBooking, MadeBookingsPage

from .decode import FIXTURES

#: A rescheduled booking's new id is the original's plus this (ids stay under 2**31).
NEW_ID_OFFSET = 1_000_000_000
_ID_MARK = 1_357_913_579  # stand-ins, found in the encoded bytes and replaced per answer
_CREATED_MARK = datetime(2001, 2, 3, 4, 5, 6)


@attrs.frozen
class Template:
    """An encoded answer split around its booking id (and its creation time, for a new booking)."""

    parts: tuple[bytes, ...]
    content_type: str

    def fill(self, booking_id: int, created: bytes = b"") -> bytes:
        parts, number = self.parts, str(booking_id).encode()
        if len(parts) == 2:
            return parts[0] + number + parts[1]
        return parts[0] + number + parts[1] + created + parts[2]


def _split(body: bytes, created_text: bytes | None) -> tuple[bytes, ...]:
    head, tail = body.split(str(_ID_MARK).encode())
    if created_text is None:
        return head, tail
    if created_text in head:
        raise ValueError("the creation date comes before the id: the template assumes it follows")
    middle, end = tail.split(created_text)
    return head, middle, end


def answers() -> dict[tuple[str, str], Template]:
    seed = JsonCodec().decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    passed = attrs.evolve(seed, booking_id=_ID_MARK, session_date=datetime.now(UTC) - timedelta(days=1))
    new = attrs.evolve(
        seed,
        booking_id=_ID_MARK,
        create_date=_CREATED_MARK,
        session_date=datetime.now(UTC) + timedelta(minutes=7),
    )
    out = {}
    for name, codec, media in (
        ("json", JsonCodec(), "application/json"),
        ("xml", XmlCodec(), "application/xml"),
    ):
        content_type = f"{media}; charset=utf-8"
        encoded_new = codec.encode(new)
        out["details", name] = Template(_split(codec.encode(passed), None), content_type)
        out["reschedule", name] = Template(_split(encoded_new, _created_text(encoded_new)), content_type)
        balance = codec.encode(Decimal("1000000000.00"))
        out["balance", name] = Template((balance,), content_type)
        listing = codec.encode(MadeBookingsPage(page_count=1, page_number=1, bookings_per_page=100))
        out["listing", name] = Template((listing,), content_type)
    return out


def _created_text(body: bytes) -> bytes:
    """How the codec wrote the creation mark (every fill takes the same shape)."""
    shape = _CREATED_MARK.isoformat().encode()
    if shape not in body:
        raise ValueError("cannot find the creation date in the encoded booking")
    return shape


class _Now:
    """The naive UTC time in the shape of ``_CREATED_MARK``, rendered once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = b""

    def text(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            now = datetime.fromtimestamp(second, UTC).replace(tzinfo=None)
            self._second, self._text = second, now.isoformat().encode()
        return self._text


async def serve(port_file: Path) -> None:
    canned = answers()
    counts: Counter[str] = Counter()
    now = _Now()

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if path == "/_stats":
            stats = dict(counts)
            counts.clear()
            return web.json_response(stats)
        counts[request.method] += 1
        body = await request.read()
        format = "xml" if "xml" in request.headers.get("Accept", "") else "json"
        if request.method == "POST":
            template = canned["reschedule", format]
            answer = template.fill(json.loads(body)["BookingID"] + NEW_ID_OFFSET, now.text())
        elif "Balance" in path:
            template = canned["balance", format]
            answer = template.parts[0]
        elif path.endswith("/MadeBookings"):
            template = canned["listing", format]
            answer = template.parts[0]
        else:
            template = canned["details", format]
            answer = template.fill(int(request.query["BookingID"]))
        return web.Response(body=answer, headers={"Content-Type": template.content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port_file.write_text(str(runner.addresses[0][1]))  # noqa: ASYNC240 - once, before serving
    await asyncio.Event().wait()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(Path(sys.argv[1])))
