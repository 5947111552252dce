"""End to end: a batch of reschedules through AdultWorkClient, against raw aiohttp (the floor).

    python -m benchmarks.e2e [--bookings 5000] [--concurrency 50] [--rounds 3]

A lean server runs in another process (:mod:`._e2e_server`). Each variant runs in a fresh
interpreter (so each has its own peak RSS), and the variants are interleaved round after round. The
floor is raw aiohttp doing the same requests and reading the bytes, decoding nothing. Targets:
at least 0.85x the floor's requests per second in JSON and 0.70x in XML; at most two
requests per booking plus one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TARGETS = {"json": 0.85, "xml": 0.70}
VARIANTS = [
    (client, format, checks)
    for format in ("json", "xml")
    for checks in (True, False)
    for client in ("raw aiohttp", "AdultWorkClient")
]


async def _raw(base: str, bookings: int, concurrency: int, format: str, checks: bool) -> None:
    import aiohttp

    accept = "application/xml" if format == "xml" else "application/json"
    headers = {"Authorization": "bearer benchmark", "Accept": accept}
    post_headers = {**headers, "Content-Type": "application/json; charset=utf-8"}
    async with aiohttp.ClientSession() as session:
        if checks:
            async with session.get(f"{base}/v1/CreditHistory/GetCurrentCreditBalance", headers=headers) as r:
                await r.read()
        pending = iter(range(1, bookings + 1))

        async def worker() -> None:
            for booking_id in pending:
                if checks:
                    url = f"{base}/v1/PhoneChat/MadeBookingDetails?BookingID={booking_id}"
                    async with session.get(url, headers=headers) as r:
                        await r.read()
                body = f'{{"BookingID":{booking_id}}}'.encode()
                async with session.post(
                    f"{base}/v1/PhoneChat/RescheduleMadeBooking", data=body, headers=post_headers
                ) as r:
                    await r.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _client(
    base: str, bookings: int, concurrency: int, format: str, checks: bool, journal: str = "memory"
) -> None:
    from aw_async import AdultWorkClient

    with tempfile.TemporaryDirectory() as scratch:
        # "memory", "sqlite" (a fresh file) or a postgresql:// URL (a fresh database: benchmarks.journal)
        spec = str(Path(scratch) / "journal.sqlite3") if journal == "sqlite" else journal
        async with AdultWorkClient("benchmark", base_url=base, format=format, journal=spec) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(
                range(1, bookings + 1), concurrency=concurrency, check_preconditions=checks
            )
    failed = [o for o in outcomes if not o.ok]
    if failed:
        raise SystemExit(f"{len(failed)} bookings failed, e.g. {failed[0].error}")


def run_variant(
    base: str,
    client: str,
    format: str,
    checks: bool,
    bookings: int,
    concurrency: int,
    journal: str = "memory",
) -> dict[str, Any]:
    """One variant in this process (called in a fresh interpreter): its rate and peak RSS."""
    import aiohttp  # noqa: F401  # imported before the clock starts: the batch is measured,

    import aw_async  # noqa: F401  # not the interpreter's start

    cpu_before = time.process_time()
    started = time.perf_counter()
    if client == "raw aiohttp":
        asyncio.run(_raw(base, bookings, concurrency, format, checks))
    else:
        asyncio.run(_client(base, bookings, concurrency, format, checks, journal))
    seconds = time.perf_counter() - started
    return {
        "bookings_per_s": bookings / seconds,
        "client_cpu_us_per_booking": (time.process_time() - cpu_before) / bookings * 1e6,
        "peak_rss_mib": peak_rss_mib(),
    }


def peak_rss_mib() -> float:
    """This process's peak resident memory, in MiB."""
    # Linux keeps ru_maxrss across exec, so a child would report its parent's peak; VmHWM is reset.
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_interpreter(
    base: str, variant: tuple[str, str, bool], bookings: int, concurrency: int, journal: str = "memory"
) -> dict[str, Any]:
    """One variant in a new interpreter (its own peak RSS, no warm caches from the others)."""
    client, format, checks = variant
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.e2e",
            "--one",
            base,
            client,
            format,
            str(checks),
            str(bookings),
            str(concurrency),
            journal,
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    return json.loads(done.stdout)


def _stats(base: str) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"{base}/_stats") as response:
        return json.loads(response.read())


@contextlib.contextmanager
def lean_server() -> Iterator[str]:
    """The benchmark server (:mod:`._e2e_server`) in another process; yields its base URL."""
    with tempfile.TemporaryDirectory() as scratch:
        port_file = Path(scratch) / "port"
        server = subprocess.Popen(
            [sys.executable, "-m", "benchmarks._e2e_server", str(port_file)],
            cwd=Path(__file__).resolve().parent.parent,
        )
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the benchmark server did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            server.terminate()
            server.wait()


def measure(bookings: int = 5000, concurrency: int = 50, rounds: int = 3) -> list[dict[str, Any]]:
    samples: dict[tuple[str, str, bool], list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    requests: dict[tuple[str, str, bool], int] = {}
    with lean_server() as base:
        _stats(base)
        for _ in range(rounds):
            for variant in VARIANTS:
                samples[variant].append(in_fresh_interpreter(base, variant, bookings, concurrency))
                requests[variant] = sum(_stats(base).values())
    rows = []
    for client, format, checks in VARIANTS:
        variant = (client, format, checks)
        rate = statistics.median(s["bookings_per_s"] for s in samples[variant])
        floor = statistics.median(s["bookings_per_s"] for s in samples["raw aiohttp", format, checks])
        ratio = rate / floor
        is_client = client == "AdultWorkClient"
        rows.append(
            {
                "client": client,
                "format": format,
                "checks": checks,
                "bookings_per_s": round(rate),
                "ratio": round(ratio, 2),
                "target": TARGETS[format] if is_client else None,
                "met": (ratio >= TARGETS[format]) if is_client else None,
                "requests_per_booking": round(requests[variant] / bookings, 4),
                "client_cpu_us_per_booking": round(
                    statistics.median(s["client_cpu_us_per_booking"] for s in samples[variant])
                ),
                "peak_rss_mib": round(max(s["peak_rss_mib"] for s in samples[variant]), 1),
            }
        )
    return rows


def print_rows(rows: list[dict[str, Any]], bookings: int, concurrency: int) -> None:
    print(f"end to end, {bookings} reschedules at concurrency {concurrency}")
    print(
        f"{'client':<17}{'format':<7}{'checks':<8}{'bookings/s':>11}{'× floor':>9}{'target':>8}"
        f"{'req/booking':>13}{'CPU µs/booking':>16}{'peak RSS MiB':>14}"
    )
    for row in rows:
        target = f"≥{row['target']}" if row["target"] else ""
        print(
            f"{row['client']:<17}{row['format']:<7}{'yes' if row['checks'] else 'no':<8}"
            f"{row['bookings_per_s']:>11}{row['ratio']:>9.2f}{target:>8}{row['requests_per_booking']:>13.4f}"
            f"{row['client_cpu_us_per_booking']:>16}{row['peak_rss_mib']:>14.1f}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        base, client, format, checks, bookings, concurrency, journal = argv[1:]
        figures = run_variant(
            base, client, format, checks == "True", int(bookings), int(concurrency), journal
        )
        print(json.dumps(figures))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print_rows(measure(args.bookings, args.concurrency, args.rounds), args.bookings, args.concurrency)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
