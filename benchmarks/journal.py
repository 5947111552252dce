"""The journal's cost: the same batch with a SqliteJournal and with a MemoryJournal.

    python -m benchmarks.journal [--bookings 5000] [--concurrency 50] [--rounds 3]

Against the lean server of :mod:`.e2e` (another process), each run in a fresh interpreter, the two
journals interleaved round after round; the ratio is SqliteJournal's bookings per second to
MemoryJournal's in the same run. Target (issue #11): at least 0.8.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from .e2e import in_fresh_interpreter, lean_server

TARGET = 0.8
JOURNALS = ("memory", "sqlite")


def measure(bookings: int = 5000, concurrency: int = 50, rounds: int = 3) -> list[dict[str, Any]]:
    rows = []
    with lean_server() as base:
        for checks in (True, False):
            samples: dict[str, list[float]] = {journal: [] for journal in JOURNALS}
            for _ in range(rounds):
                for journal in JOURNALS:
                    figures = in_fresh_interpreter(
                        base, ("AdultWorkClient", "json", checks), bookings, concurrency, journal
                    )
                    samples[journal].append(figures["bookings_per_s"])
            memory, sqlite = (statistics.median(samples[journal]) for journal in JOURNALS)
            rows.append(
                {
                    "checks": checks,
                    "memory_bookings_per_s": round(memory),
                    "sqlite_bookings_per_s": round(sqlite),
                    "ratio": round(sqlite / memory, 2),
                    "target": TARGET,
                    "met": sqlite / memory >= TARGET,
                }
            )
    return rows


def print_rows(rows: list[dict[str, Any]], bookings: int, concurrency: int) -> None:
    print(f"the journal's cost: {bookings} reschedules at concurrency {concurrency}, JSON")
    print(f"{'checks':<8}{'MemoryJournal/s':>17}{'SqliteJournal/s':>17}{'ratio':>8}{'target':>8}")
    for row in rows:
        print(
            f"{'yes' if row['checks'] else 'no':<8}{row['memory_bookings_per_s']:>17}"
            f"{row['sqlite_bookings_per_s']:>17}{row['ratio']:>8.2f}{'≥' + str(row['target']):>8}"
            f"{'' if row['met'] else '  NOT met'}"
        )


def main(argv: list[str] | None = None) -> int:
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
