"""The journal's cost: the same batch with a SqliteJournal, a PostgresJournal and a MemoryJournal.

    python -m benchmarks.journal [--bookings 5000] [--concurrency 50] [--rounds 3]

Against the lean server of :mod:`.e2e` (another process), each run in a fresh interpreter with a
fresh journal (a temporary sqlite file; a new PostgreSQL database, as :mod:`.cpu` finds a server),
the journals interleaved round after round; each ratio is that journal's bookings per second to
MemoryJournal's in the same run. Targets ("Speed of the safe path"): SqliteJournal at least 0.85,
PostgresJournal at least 0.6 (5,000 bookings, concurrency 50, JSON). Without PostgreSQL its column
says n/a.
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from .cpu import postgres
from .e2e import in_fresh_interpreter, lean_server

TARGETS = {"sqlite": 0.85, "postgres": 0.6}
JOURNALS = ("memory", "sqlite", "postgres")


def measure(bookings: int = 5000, concurrency: int = 50, rounds: int = 3) -> list[dict[str, Any]]:
    rows = []
    with lean_server() as base, postgres() as (pg, why_not):
        for checks in (True, False):
            samples: dict[str, list[float]] = {journal: [] for journal in JOURNALS}
            for _ in range(rounds):
                for journal in JOURNALS:
                    if journal == "postgres" and pg is None:
                        continue
                    spec = pg.create_database() if journal == "postgres" else journal
                    try:
                        figures = in_fresh_interpreter(
                            base, ("AdultWorkClient", "json", checks), bookings, concurrency, spec
                        )
                    finally:
                        if journal == "postgres":
                            pg.drop_database(spec)
                    samples[journal].append(figures["bookings_per_s"])
            memory = statistics.median(samples["memory"])
            row: dict[str, Any] = {"checks": checks, "memory_bookings_per_s": round(memory)}
            for journal in ("sqlite", "postgres"):
                if samples[journal]:
                    rate = statistics.median(samples[journal])
                    row[f"{journal}_bookings_per_s"] = round(rate)
                    row[f"{journal}_ratio"] = round(rate / memory, 2)
                    row[f"{journal}_met"] = rate / memory >= TARGETS[journal]
                else:
                    row[f"{journal}_bookings_per_s"] = None
                    row[f"{journal}_ratio"] = None
                    row[f"{journal}_why_not"] = why_not
            rows.append(row)
    return rows


def print_rows(rows: list[dict[str, Any]], bookings: int, concurrency: int) -> None:
    print(f"the journal's cost: {bookings} reschedules at concurrency {concurrency}, JSON, a batch")
    print(
        f"{'checks':<8}{'Memory/s':>10}{'Sqlite/s':>10}{'ratio':>7}{'target':>8}"
        f"{'Postgres/s':>12}{'ratio':>7}{'target':>8}"
    )
    for row in rows:
        line = f"{'yes' if row['checks'] else 'no':<8}{row['memory_bookings_per_s']:>10}"
        for journal, width in (("sqlite", 10), ("postgres", 12)):
            target = f"≥{TARGETS[journal]}"
            if row[f"{journal}_ratio"] is None:
                line += f"{'n/a':>{width}}{'':>7}{target:>8}"
            else:
                mark = "" if row[f"{journal}_met"] else "!"
                line += (
                    f"{row[f'{journal}_bookings_per_s']:>{width}}{row[f'{journal}_ratio']:>7.2f}"
                    f"{target + mark:>8}"
                )
        print(line)
    why = next((row.get("postgres_why_not") for row in rows if row.get("postgres_why_not")), None)
    if why:
        print(f"PostgresJournal: n/a ({why})")
    print("(! marks a ratio under its target)")


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
