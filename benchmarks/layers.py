"""Where the client's CPU per booking goes: the reschedule path measured layer by layer.

    python -m benchmarks.layers [--bookings 5000] [--rounds 5] [--format json] [--checks]

Each row reschedules ``bookings`` distinct bookings at concurrency 50 against the lean server of
:mod:`.e2e`, adding one layer of the client to the row above it, in a fresh interpreter, after a
warm-up over other bookings; rows are interleaved round after round, and each figure is the median
of this process's CPU time per booking (user + system, every thread). A row's difference from the
one above is what that layer costs, give or take the noise of a shared machine.

Checks off (the POST alone): raw aiohttp; the request built and sent through the transport; the
answer decoded; ``Caller.call`` (token, Date header, error mapping); the journal's rules as a batch
runs them (a claim, the proof before the POST, the outcome; the flight inline); the batch's own
bookkeeping; then the single call's detached flight (a task per booking), and the public single call.

Checks on (``--checks``, the single call's whole checked path): raw aiohttp doing the two GETs
concurrently and the POST; through the transport; the three answers decoded; ``Caller.call``; the
prerequisite rules; the journal's rules around it (detached, as the single call runs them); the
public ``reschedule_made_booking`` with a MemoryJournal; and with a SqliteJournal (the default).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._cpu_variants import BALANCE, DETAILS, MEDIA, RESCHEDULE, drive
from .cpu import WARM_UP_FIRST
from .e2e import lean_server

UNCHECKED = (
    "raw aiohttp",
    "+ request and transport",
    "+ decoding the answer",
    "+ Caller.call",
    "+ journal (memory, inline)",
    "+ batch",
    "single: journal detached",
    "reschedule_made_booking",
)
CHECKED = (
    "raw aiohttp: 2 GETs + POST",
    "+ requests and transport",
    "+ decoding the answers",
    "+ Caller.call",
    "+ the prerequisite rules",
    "+ journal (memory, detached)",
    "reschedule_made_booking",
    "+ SqliteJournal (the default)",
)
WORKERS = 50


async def _raw(base: str, ids: range, format: str, checks: bool) -> None:
    import aiohttp

    headers = {"Authorization": "bearer benchmark", "Accept": MEDIA[format]}
    post_headers = {**headers, "Content-Type": "application/json; charset=utf-8"}

    async with aiohttp.ClientSession() as session:

        async def get(url: str) -> bytes:
            async with session.get(url, headers=headers) as response:
                return await response.read()

        async def one(booking_id: int) -> None:
            if checks:
                await asyncio.gather(get(f"{base}{DETAILS}{booking_id}"), get(base + BALANCE))
            body = f'{{"BookingID":{booking_id}}}'.encode()
            async with session.post(base + RESCHEDULE, data=body, headers=post_headers) as response:
                await response.read()

        await drive(ids, WORKERS, one)


async def _run(base: str, layer: str, ids: range, format: str, checks: bool, journal: str) -> None:
    from aw_async import AdultWorkClient
    from aw_async._endpoints import GET_CURRENT_CREDIT_BALANCE, MADE_BOOKING_DETAILS, RESCHEDULE_MADE_BOOKING
    from aw_async._params import MadeBookingDetailsQuery, NoParameters, RescheduleMadeBookingRequest
    from aw_async._protocol import build_request, decipher_response
    from aw_async._tasks import gather_or_cancel
    from aw_async.journal import Terms
    from aw_async.phonechat._guard import AttemptContext
    from aw_async.phonechat._prerequisites import check_credits, check_session_passed

    if layer.startswith("raw aiohttp"):
        await _raw(base, ids, format, checks)
        return
    async with AdultWorkClient("benchmark", base_url=base, format=format, journal=journal) as aw:
        phonechat = aw.phonechat
        # The layers below the service, which only a benchmark calls alone.
        api, guard, zone = phonechat._caller, phonechat._guard, phonechat.server_timezone
        settings, codecs = api.settings, api.codecs
        if layer == "+ batch":
            await phonechat.reschedule_made_bookings(ids, concurrency=WORKERS, check_preconditions=checks)
            return
        if layer.startswith(("reschedule_made_booking", "+ SqliteJournal")):

            async def public(booking_id: int) -> Any:
                return await phonechat.reschedule_made_booking(booking_id, check_preconditions=checks)

            await drive(ids, WORKERS, public)
            return
        transport_only = layer in ("+ request and transport", "+ requests and transport")

        async def call(endpoint: Any, params: object) -> Any:
            if layer in ("+ Caller.call", "+ the prerequisite rules") or "journal" in layer:
                return await api.call(endpoint, params)
            request = build_request(endpoint, params, settings=settings, token="benchmark")
            response = await api.transport.send(request)
            if not transport_only:
                return decipher_response(endpoint, request, response, codecs)
            return None

        async def work(booking_id: int, context: AttemptContext | None) -> Any:
            if checks:
                booking, balance = await gather_or_cancel(
                    call(MADE_BOOKING_DETAILS, MadeBookingDetailsQuery(booking_id=booking_id)),
                    call(GET_CURRENT_CREDIT_BALANCE, NoParameters()),
                )
                if layer == "+ the prerequisite rules" or context is not None:
                    check_session_passed(booking, datetime.now(UTC), zone)
                    check_credits(booking, balance)
                    if context is not None:
                        context.terms = Terms.of(booking)
            if context is not None:
                not_after = await context.before_post()
                request = RescheduleMadeBookingRequest(booking_id=booking_id)
                return await api.call(RESCHEDULE_MADE_BOOKING, request, not_after=not_after)
            return await call(RESCHEDULE_MADE_BOOKING, RescheduleMadeBookingRequest(booking_id=booking_id))

        if "journal" in layer:
            detached = "detached" in layer

            async def one(booking_id: int) -> Any:
                async def attempt(context: AttemptContext) -> Any:
                    return await work(booking_id, context)

                return await guard.run(booking_id, attempt, detached=detached)

        else:

            async def one(booking_id: int) -> Any:
                return await work(booking_id, None)

        await drive(ids, WORKERS, one)


def _journal_of(layer: str, scratch: str) -> str:
    return str(Path(scratch) / "journal.sqlite3") if "SqliteJournal" in layer else "memory"


def cpu_per_booking(base: str, layer: str, bookings: int, format: str, checks: bool) -> float:
    """One layer in this process: microseconds of CPU per booking, after a warm-up over other ids.
    The client (and its journal) is the one of the whole run, closed inside the measured span."""
    with tempfile.TemporaryDirectory() as scratch:
        journal = _journal_of(layer, scratch)

        async def both() -> float:
            warm_up = range(WARM_UP_FIRST, WARM_UP_FIRST + 300)
            await _run(base, layer, warm_up, format, checks, journal)
            started = time.process_time()
            await _run(base, layer, range(1, bookings + 1), format, checks, journal)
            return (time.process_time() - started) / bookings * 1e6

        return asyncio.run(both())


def measure(
    bookings: int = 5000, rounds: int = 5, format: str = "json", checks: bool = False
) -> list[dict[str, Any]]:
    layers = CHECKED if checks else UNCHECKED
    samples: dict[str, list[float]] = {layer: [] for layer in layers}
    with lean_server() as base:
        for _ in range(rounds):
            for layer in layers:
                done = subprocess.run(
                    [
                        sys.executable, "-m", "benchmarks.layers", "--one", base, layer, str(bookings),
                        format, str(checks),
                    ],
                    capture_output=True,
                    text=True,
                    cwd=Path(__file__).resolve().parent.parent,
                    check=False,
                )  # fmt: skip
                if done.returncode != 0:
                    raise RuntimeError(f"layer {layer!r} failed:\n{done.stderr[-3000:]}")
                samples[layer].append(float(done.stdout))
    rows, below = [], None
    for layer in layers:
        median = statistics.median(samples[layer])
        rows.append(
            {
                "layer": layer,
                "format": format,
                "checks": checks,
                "cpu_us_per_booking": round(median),
                "added_us": None if below is None else round(median - below),
            }
        )
        below = median
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    checks = "checks on: the single call's checked path" if rows[0]["checks"] else "checks off"
    print(f"client CPU per booking, layer by layer ({rows[0]['format']}, {checks})")
    print(f"{'layer':<34}{'µs/booking':>12}{'added':>8}")
    for row in rows:
        added = "" if row["added_us"] is None else f"{row['added_us']:+d}"
        print(f"{row['layer']:<34}{row['cpu_us_per_booking']:>12}{added:>8}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        base, layer, bookings, format, checks = argv[1:]
        print(cpu_per_booking(base, layer, int(bookings), format, checks == "True"))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--format", choices=("json", "xml"), default="json")
    parser.add_argument("--checks", action="store_true", help="the checked single call's path")
    args = parser.parse_args(argv)
    print_rows(measure(args.bookings, args.rounds, args.format, args.checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(None))
