"""The client's CPU time per booking: the library beside the floor, its peers and a hand-written version.

    python -m benchmarks.cpu [--quick] [--bookings 3000] [--concurrency 50] [--rounds 5]

What a web backend pays for a reschedule is the CPU its process spends on it: on a small machine the
server, not the client, limits the rate, so throughput hides the client's cost. Each variant
(:mod:`._cpu_variants`) runs in a fresh interpreter against one lean server in another process
(:mod:`._e2e_server`): it is opened (its session, client, journal), warmed up over ``concurrency``
other bookings, and then it reschedules ``bookings`` distinct bookings at ``concurrency``, measured
as the process's user + system CPU time (``resource.getrusage``, every thread: the sqlite writer's
too) from the first booking until the client is closed (so the journal's queued commits count).
The variants are interleaved round after round; each figure is a median, and each ratio is the
floor's CPU per booking divided by the variant's, from the same run (JSON rows to the JSON floor,
XML rows to the XML floor). Each journal variant gets a fresh journal: a MemoryJournal, a
SqliteJournal in a temporary file, a PostgresJournal in a new database (of ``AW_TEST_POSTGRES_DSN``'s
server, or of a throwaway cluster as the tests start one; without either, its rows say n/a).
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
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ._cpu_variants import Variant, open_variant
from .e2e import lean_server

JOURNALS = ("memory", "sqlite", "postgres")
PEERS = (
    Variant("floor"),
    Variant("json.loads"),
    Variant("pydantic"),
    Variant("httpx"),
    Variant("hand", checks=True),
)
LIBRARY = tuple(
    Variant(kind, format, checks, journal)
    for format in ("json", "xml")
    for checks in (False, True)
    for kind in ("single", "batch")
    for journal in JOURNALS
)
VARIANTS = (*PEERS, Variant("floor", "xml"), *LIBRARY)
#: The warm-up's booking ids start here (the measured ones start at 1).
WARM_UP_FIRST = 100_000_001


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stats(base: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base}/_stats") as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


async def _measure(variant: Variant, base: str, bookings: int, concurrency: int, journal: str | None) -> Any:
    warm_up = range(WARM_UP_FIRST, WARM_UP_FIRST + concurrency)
    async with contextlib.AsyncExitStack() as stack:
        run = await stack.enter_async_context(open_variant(variant, base, concurrency, journal, warm_up))
        _stats(base)  # the counts start now
        cpu, started = _cpu_seconds(), time.perf_counter()
        await run(range(1, bookings + 1))
        await stack.aclose()  # the client closed: its journal's queue committed
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "cpu_us_per_booking": cpu / bookings * 1e6,
        "bookings_per_s": bookings / seconds,
        "requests_per_booking": sum(_stats(base).values()) / bookings,
    }


def run_one(variant: Variant, base: str, bookings: int, concurrency: int, journal: str | None) -> Any:
    """One variant in this process (a fresh interpreter): its figures."""
    import aiohttp  # noqa: F401  # every import before the clock starts

    import aw_async  # noqa: F401

    with tempfile.TemporaryDirectory() as scratch:
        if variant.journal == "sqlite":
            journal = str(Path(scratch) / "journal.sqlite3")
        return asyncio.run(_measure(variant, base, bookings, concurrency, journal))


def in_fresh_interpreter(
    variant: Variant, base: str, bookings: int, concurrency: int, journal: str | None
) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.cpu", "--one", json.dumps(attrs.asdict(variant)),
            base, str(bookings), str(concurrency), journal or "",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@contextlib.contextmanager
def postgres() -> Iterator[tuple[Any, str]]:
    """A PostgreSQL server to make fresh databases on (the tests' own way: ``AW_TEST_POSTGRES_DSN``'s,
    or a throwaway cluster), or None and why not."""
    try:
        import asyncpg  # noqa: F401

        from tests.postgres import ExternalPostgres, PostgresUnavailable, start_throwaway
    except ImportError as exc:
        yield None, f"{exc} (pip install -e '.[test]')"
        return
    import os

    external = os.environ.get("AW_TEST_POSTGRES_DSN", "").strip()
    try:
        server = ExternalPostgres(external) if external else start_throwaway()
    except PostgresUnavailable as exc:
        yield None, str(exc)
        return
    try:
        yield server, ""
    finally:
        if not external:
            server.destroy()


def measure(bookings: int = 3000, concurrency: int = 50, rounds: int = 5) -> dict[str, Any]:
    samples: dict[Variant, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
    with lean_server() as base, postgres() as (pg, why_not):
        for _ in range(rounds):
            for variant in VARIANTS:
                if variant.journal == "postgres":
                    if pg is None:
                        continue
                    dsn = pg.create_database()
                    try:
                        samples[variant].append(
                            in_fresh_interpreter(variant, base, bookings, concurrency, dsn)
                        )
                    finally:
                        pg.drop_database(dsn)
                else:
                    samples[variant].append(in_fresh_interpreter(variant, base, bookings, concurrency, None))
    floors = {
        format: statistics.median(s["cpu_us_per_booking"] for s in samples[Variant("floor", format)])
        for format in ("json", "xml")
    }
    rows = []
    for variant in VARIANTS:
        row: dict[str, Any] = {**attrs.asdict(variant), "label": variant.label}
        if samples[variant]:
            cpu = statistics.median(s["cpu_us_per_booking"] for s in samples[variant])
            row.update(
                cpu_us_per_booking=round(cpu, 1),
                floor_ratio=round(floors[variant.format] / cpu, 3),
                bookings_per_s=round(statistics.median(s["bookings_per_s"] for s in samples[variant])),
                requests_per_booking=round(
                    statistics.median(s["requests_per_booking"] for s in samples[variant]), 3
                ),
                samples=[round(s["cpu_us_per_booking"], 1) for s in samples[variant]],
            )
        else:
            row["not_run"] = f"n/a: {why_not}"
        rows.append(row)
    return {"bookings": bookings, "concurrency": concurrency, "rounds": rounds, "rows": rows}


def print_rows(figures: dict[str, Any]) -> None:
    print(
        f"client CPU per booking: {figures['bookings']} reschedules at concurrency {figures['concurrency']}, "
        f"medians of {figures['rounds']} rounds, each variant in a fresh interpreter"
    )
    print(
        f"{'variant':<52}{'format':<7}{'journal':<9}{'CPU µs':>8}{'floor ÷':>9}{'bookings/s':>12}"
        f"{'req/booking':>13}"
    )
    for row in figures["rows"]:
        head = f"{row['label']:<52}{row['format']:<7}{row['journal'] or '':<9}"
        if "cpu_us_per_booking" not in row:
            print(f"{head}{row['not_run']}")
            continue
        print(
            f"{head}{row['cpu_us_per_booking']:>8.0f}{row['floor_ratio']:>9.2f}{row['bookings_per_s']:>12}"
            f"{row['requests_per_booking']:>13.3f}"
        )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        spec, base, bookings, concurrency, journal = argv[1:]
        variant = Variant(**json.loads(spec))
        print(json.dumps(run_one(variant, base, int(bookings), int(concurrency), journal or None)))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="1,000 bookings, one round")
    parser.add_argument("--bookings", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    bookings, rounds = (1000, 1) if args.quick else (args.bookings, args.rounds)
    figures = measure(bookings, args.concurrency, rounds)
    print_rows(figures)
    from . import targets

    print()
    targets.print_rows(targets.rows({"cpu": figures}))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
