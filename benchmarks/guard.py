"""The journal's rules alone, without HTTP: CPU per booking of the guard with each journal, and with
a SqliteJournal that already holds entries (as the default journal does after weeks of use).

    python -m benchmarks.guard [--bookings 5000] [--rounds 3] [--sizes 0,20000,100000]

Each booking runs through ``RescheduleGuard.run`` (the claim, the proof before the POST, the outcome,
the server offset learnt from the new booking) with an attempt that returns a decoded booking at
once, at concurrency 50, inline (as a batch runs it) and detached (as the single call does). What
is left is the journal's cost and the guard's, on every thread of the process. A SqliteJournal is
measured empty and then holding ``sizes`` rescheduled entries first (written straight into its file),
since a store whose reads grow with its size is cheap on a benchmark's fresh file and dear in a
service's 90-day journal. Each row runs in a fresh interpreter; rounds are interleaved; medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

from .decode import FIXTURES

API_ROOT = "http://127.0.0.1:9"  # never contacted: the attempt sends nothing
FILLER_FIRST = 1_500_000_000  # the ids of the entries written in advance


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(journal: str, detached: bool, bookings: int, first: int = 1) -> float:
    """CPU µs per booking of ``bookings`` guarded attempts (after 50 to warm up)."""
    from aw_async import AdultWorkClient
    from aw_async.codecs import JsonCodec
    from aw_async.journal import Terms
    from aw_async.models import MadeBooking

    seed = JsonCodec().decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)

    async with AdultWorkClient("benchmark", base_url=API_ROOT, journal=journal) as aw:
        guard = aw.phonechat._guard  # the layer under the service, which only a benchmark calls alone

        async def one(booking_id: int) -> Any:
            async def attempt(context: Any) -> MadeBooking:
                context.terms = Terms.of(seed)  # as a checked attempt does once it read the booking
                await context.before_post()
                created = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
                return attrs.evolve(seed, booking_id=booking_id + 1_000_000_000, create_date=created)

            return await guard.run(booking_id, attempt, detached=detached)

        async def drive(ids: range) -> None:
            pending = iter(ids)

            async def worker() -> None:
                for booking_id in pending:
                    await one(booking_id)

            await asyncio.gather(*(worker() for _ in range(50)))

        await drive(range(first + bookings, first + bookings + 50))
        await aw.journal.flush()
        started = _cpu()
        await drive(range(first, first + bookings))
        await aw.journal.flush()
        return (_cpu() - started) / bookings * 1e6


def _fill(path: Path, entries: int) -> None:
    """``entries`` rescheduled entries written straight into the journal's file, like the one the
    library wrote first (so every column is as the journal writes it)."""
    asyncio.run(_run(str(path), False, 1, first=FILLER_FIRST - 100))
    connection = sqlite3.connect(path, isolation_level=None)
    columns = [c[1] for c in connection.execute("PRAGMA table_info(attempts)")]
    template = list(connection.execute(f"SELECT {', '.join(columns)} FROM attempts LIMIT 1").fetchone())
    at = {name: index for index, name in enumerate(columns)}
    rows = []
    for offset in range(entries):
        row = list(template)
        row[at["booking_id"]] = FILLER_FIRST + offset
        if "new_booking_id" in at:
            row[at["new_booking_id"]] = FILLER_FIRST + 100_000_000 + offset
        rows.append(row)
    marks = ", ".join("?" * len(columns))
    connection.execute("BEGIN")
    connection.executemany(f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({marks})", rows)
    connection.execute("COMMIT")
    connection.close()


def run_one(journal: str, entries: int, detached: bool, bookings: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        spec = journal
        if journal == "sqlite":
            path = Path(scratch) / "journal.sqlite3"
            if entries:
                _fill(path, entries)
            spec = str(path)
        return asyncio.run(_run(spec, detached, bookings))


def measure(bookings: int, rounds: int, sizes: list[int]) -> list[dict[str, Any]]:
    cases = [("memory", 0, d) for d in (False, True)] + [
        ("sqlite", size, d) for size in sizes for d in (False, True)
    ]
    samples: dict[tuple[str, int, bool], list[float]] = {case: [] for case in cases}
    for _ in range(rounds):
        for case in cases:
            journal, entries, detached = case
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.guard",
                    "--one",
                    json.dumps([journal, entries, detached, bookings]),
                ],
                capture_output=True,
                text=True,
                check=False,
                cwd=Path(__file__).resolve().parent.parent,
            )
            if done.returncode != 0:
                raise RuntimeError(f"{case} failed:\n{done.stderr[-3000:]}")
            samples[case].append(float(done.stdout))
    return [
        {
            "journal": journal,
            "entries_before": entries,
            "detached": detached,
            "cpu_us_per_booking": round(statistics.median(samples[journal, entries, detached]), 1),
        }
        for journal, entries, detached in cases
    ]


def print_rows(rows: list[dict[str, Any]], bookings: int) -> None:
    print(f"the guard and its journal alone (no HTTP): {bookings} bookings at concurrency 50")
    print(f"{'journal':<10}{'entries before':>16}{'inline µs':>12}{'detached µs':>14}")
    by = {(r["journal"], r["entries_before"], r["detached"]): r["cpu_us_per_booking"] for r in rows}
    for journal, entries in dict.fromkeys((r["journal"], r["entries_before"]) for r in rows):
        inline, detached = by[journal, entries, False], by[journal, entries, True]
        print(f"{journal:<10}{entries:>16}{inline:>12.1f}{detached:>14.1f}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--one":
        journal, entries, detached, bookings = json.loads(argv[1])
        print(run_one(journal, entries, detached, bookings))
        return 0
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bookings", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="0,20000,100000", help="SqliteJournal entries written first")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.sizes.split(",")]
    print_rows(measure(args.bookings, args.rounds, sizes), args.bookings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
