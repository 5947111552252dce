"""A lean stand-in for the API, for the end-to-end benchmark: pre-encoded answers, counted requests.

    python -m benchmarks._e2e_server PORT_FILE

It answers every request with bytes encoded once at start (a booking whose session has passed, a
balance, the rescheduled booking) in the format ``Accept`` asks for, so the server's cost is the same
small constant for every client measured against it. ``GET /_stats`` returns and resets the counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import attrs
from aiohttp import web

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import MadeBooking

from .decode import FIXTURES


def answers() -> dict[tuple[str, str], tuple[bytes, str]]:
    seed = JsonCodec().decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    passed = attrs.evolve(seed, session_date=datetime.now(UTC) - timedelta(days=1))
    new = attrs.evolve(seed, booking_id=999_999, session_date=datetime.now(UTC) + timedelta(minutes=7))
    out = {}
    for name, codec, media in (
        ("json", JsonCodec(), "application/json"),
        ("xml", XmlCodec(), "application/xml"),
    ):
        content_type = f"{media}; charset=utf-8"
        out["details", name] = (codec.encode(passed), content_type)
        out["balance", name] = (codec.encode(Decimal("1000000000.00")), content_type)
        out["reschedule", name] = (codec.encode(new), content_type)
    return out


async def serve(port_file: Path) -> None:
    canned = answers()
    counts: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        path = request.path
        if path == "/_stats":
            stats = dict(counts)
            counts.clear()
            return web.json_response(stats)
        counts[request.method] += 1
        await request.read()
        kind = "reschedule" if request.method == "POST" else "balance" if "Balance" in path else "details"
        body, content_type = canned[kind, "xml" if "xml" in request.headers.get("Accept", "") else "json"]
        return web.Response(body=body, headers={"Content-Type": content_type})

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
