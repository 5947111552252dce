"""Where the client's CPU per booking goes: the reschedule path measured layer by layer.

    python -m benchmarks.layers [--bookings 5000] [--rounds 5] [--format json]

Each row runs 5,000 RescheduleMadeBooking POSTs at concurrency 50 (checks off) against the lean
server of :mod:`.e2e`, adding one layer of the client to the row above it: raw aiohttp; the request
built and sent through the transport; the answer decoded; ``Api.call`` (token, error mapping); the
journal and single-flight as a batch uses them (a claim before the POST, the outcome after); the
batch's own bookkeeping. Each row runs in a fresh interpreter,
rows are interleaved round after round, and each figure is the median of this process's CPU time
per booking (so a row's difference from the one above is what that layer costs, give or take the
noise of a shared machine, which a few rounds do not remove).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .e2e import _raw, lean_server

LAYERS = (
    "raw aiohttp",
    "+ request and transport",
    "+ decoding the answer",
    "+ Api.call",
    "+ journal",
    "+ batch",
)
WORKERS = 50


async def _run(base: str, layer: str, bookings: int, format: str) -> None:
    from aw_async._once import Attempt

    from aw_async import AdultWorkClient
    from aw_async._endpoints import RESCHEDULE_MADE_BOOKING
    from aw_async._params import RescheduleMadeBookingRequest
    from aw_async._protocol import build_request, decipher_response
    from aw_async.models import MadeBooking

    if layer == "raw aiohttp":  # the floor, exactly as the end-to-end benchmark runs it
        await _raw(base, bookings, WORKERS, format, checks=False)
        return
    pending = iter(range(1, bookings + 1))
    async with AdultWorkClient("benchmark", base_url=base, format=format) as aw:
        phonechat = aw.phonechat
        api = phonechat._api  # the layers below the service, which only a benchmark calls alone
        if layer == "+ batch":
            await phonechat.reschedule_made_bookings(
                range(1, bookings + 1), concurrency=WORKERS, check_preconditions=False
            )
            return

        def reschedule(booking_id: int) -> Callable[[Attempt], Awaitable[MadeBooking]]:
            async def attempt(progress: Attempt) -> MadeBooking:
                progress.posting = True
                return await phonechat.send_reschedule(booking_id)

            return attempt

        async def one_layer() -> None:
            for booking_id in pending:
                params = RescheduleMadeBookingRequest(booking_id=booking_id)
                if layer in ("+ request and transport", "+ decoding the answer"):
                    request = build_request(
                        RESCHEDULE_MADE_BOOKING, params, settings=api.settings, token="benchmark"
                    )
                    response = await api.transport.send(request)
                    if layer == "+ decoding the answer":
                        decipher_response(RESCHEDULE_MADE_BOOKING, request, response, api.codecs)
                elif layer == "+ Api.call":
                    await api.call(RESCHEDULE_MADE_BOOKING, params)
                else:  # the journal as a batch goes through it: claim, POST, outcome, its flight inline
                    await phonechat._guard.run(booking_id, reschedule(booking_id), detached=False)

        await asyncio.gather(*(one_layer() for _ in range(WORKERS)))


def cpu_per_booking(base: str, layer: str, bookings: int, format: str) -> float:
    """One layer in this process: microseconds of CPU per booking, after a short warm-up."""
    asyncio.run(_run(base, layer, 300, format))
    started = time.process_time()
    asyncio.run(_run(base, layer, bookings, format))
    return (time.process_time() - started) / bookings * 1e6


def measure(bookings: int = 5000, rounds: int = 5, format: str = "json") -> list[dict[str, Any]]:
    samples: dict[str, list[float]] = {layer: [] for layer in LAYERS}
    with lean_server() as base:
        for _ in range(rounds):
            for layer in LAYERS:
                done = subprocess.run(
                    [sys.executable, "-m", "benchmarks.layers", "--one", base, layer, str(bookings), format],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=Path(__file__).resolve().parent.parent,
                )
                samples[layer].append(float(done.stdout))
    rows, below = [], None
    for layer in LAYERS:
        median = statistics.median(samples[layer])
        rows.append(
            {
                "layer": layer,
                "format": format,
                "cpu_us_per_booking": round(median),
                "added_us": None if below is None else round(median - below),
            }
        )
        below = median
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"client CPU per booking, layer by layer ({rows[0]['format']}, checks off)")
    print(f"{'layer':<30}{'µs/booking':>12}{'added':>8}")
    for row in rows:
        added = "" if row["added_us"] is None else f"{row['added_us']:+d}"
        print(f"{row['layer']:<30}{row['cpu_us_per_booking']:>12}{added:>8}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        base, layer, bookings, format = argv[1:]
        print(cpu_per_booking(base, layer, int(bookings), format))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--format", choices=("json", "xml"), default="json")
    args = parser.parse_args(argv)
    print_rows(measure(args.bookings, args.rounds, args.format))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(None))
