"""``python -m benchmarks``: every benchmark, one table each, and the figures as JSON.

    python -m benchmarks [--quick] [--only decode,memory,imports,e2e,layers,journal,cpu] [--json FILE]

Install the peers first with ``pip install -e '.[bench]'`` (and ``.[test]`` for the PostgreSQL rows:
they start a throwaway cluster as the tests do, or use ``AW_TEST_POSTGRES_DSN``'s server). Every
comparison is interleaved in one run and reports medians, with ratios to a floor measured in that
same run. The table of targets ("Speed of the safe path") closes the output.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import cpu, decode, e2e, imports, journal, layers, memory, targets

SECTIONS = ("decode", "memory", "imports", "e2e", "layers", "journal", "cpu")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer rounds and bookings, for a smoke run")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections to run")
    parser.add_argument(
        "--json", type=Path, default=Path("benchmarks/results/latest.json"), help="where to write the figures"
    )
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if unknown := only - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    figures: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "machine": platform.platform(),
    }
    if "decode" in only:
        figures["decode"] = decode.measure(rounds=11 if args.quick else 41)
        decode.print_rows(figures["decode"])
        print()
    if "memory" in only:
        figures["memory"] = memory.measure(count=2000 if args.quick else 10_000)
        m = figures["memory"]
        print(
            f"memory: {m['bytes_per_booking_json']} B (JSON), {m['bytes_per_booking_xml']} B (XML) "
            f"retained per MadeBooking with {m['bookings_kept']} kept; target ≤{m['target_bytes']:.0f} B: "
            f"{'met' if m['met'] else 'NOT met'}\n"
        )
    if "imports" in only:
        figures["imports"] = imports.measure(rounds=5 if args.quick else 15)
        i = figures["imports"]
        print(f"import: aw_async {i['aw_async_ms']} ms, aiohttp {i['aiohttp_ms']} ms (ratio {i['ratio']})\n")
    if "e2e" in only:
        bookings, rounds = (1000, 1) if args.quick else (5000, 3)
        figures["e2e"] = e2e.measure(bookings=bookings, concurrency=50, rounds=rounds)
        e2e.print_rows(figures["e2e"], bookings, 50)
        print()
    if "layers" in only:
        bookings, rounds = (1000, 1) if args.quick else (5000, 5)
        ladders = (("json", False), ("xml", False), ("json", True))  # the last: the checked single call
        figures["layers"] = [
            row
            for format, checks in ladders
            for row in layers.measure(bookings, rounds, format, checks=checks)
        ]
        for format, checks in ladders:
            layers.print_rows(
                [row for row in figures["layers"] if (row["format"], row["checks"]) == (format, checks)]
            )
            print()
    if "journal" in only:
        bookings, rounds = (1000, 1) if args.quick else (5000, 3)
        figures["journal"] = journal.measure(bookings=bookings, concurrency=50, rounds=rounds)
        journal.print_rows(figures["journal"], bookings, 50)
        print()
    if "cpu" in only:
        bookings, rounds = (1000, 1) if args.quick else (3000, 5)
        figures["cpu"] = cpu.measure(bookings=bookings, concurrency=50, rounds=rounds)
        cpu.print_rows(figures["cpu"])
    figures["targets"] = targets.rows(figures)
    print()
    targets.print_rows(figures["targets"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
