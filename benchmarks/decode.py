"""Per-document decode of a MadeBooking, against the floor of parsing alone and against the peers.

    python -m benchmarks.decode [--rounds N] [--json FILE]

The floors are the cost no typed decoder can avoid: ``json.loads`` for JSON, ``lxml.etree.fromstring``
for XML. Every contender runs interleaved with its floor, round after round in a rotating order, so
that a noisy neighbour slows all of them alike; each figure is the median over the rounds, and the
ratios are to the floor measured in the same run. Peers (orjson, msgspec, pydantic, xmltodict,
xsdata) come with the ``bench`` extra and are skipped when missing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from lxml import etree

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import MadeBooking, MadeBookingsPage

from .peers import json_peers, xml_peers

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
#: The decode targets: a ratio to the parse-only floor (CHANGELOG: how they tightened).
TARGETS = {
    "JsonCodec.decode": 1.2,
    "XmlCodec.decode": 2.0,
    "JsonCodec.decode, page": 1.2,
    "XmlCodec.decode, page": 2.0,
}
JSON_FLOOR, XML_FLOOR = "json.loads", "lxml.etree.fromstring"
JSON_PAGE_FLOOR, XML_PAGE_FLOOR = "json.loads, page", "lxml.etree.fromstring, page"
PAGE_SIZE = 100


def documents() -> tuple[bytes, bytes]:
    """The seed's booking, as the server writes it: compact JSON and compact DataContract XML."""
    json_codec, xml_codec = JsonCodec(), XmlCodec()
    booking = json_codec.decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    return json_codec.encode(booking), xml_codec.encode(booking)


def page_documents() -> tuple[bytes, bytes]:
    """A MadeBookings page of 100 bookings (the seed's, each with its own id), in both formats."""
    json_codec, xml_codec = JsonCodec(), XmlCodec()
    booking = json_codec.decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    bookings = tuple(attrs.evolve(booking, booking_id=number) for number in range(1, PAGE_SIZE + 1))
    page = MadeBookingsPage(page_count=3, page_number=1, bookings_per_page=PAGE_SIZE, bookings=bookings)
    return json_codec.encode(page), xml_codec.encode(page)


def contenders(with_peers: bool = True) -> dict[str, tuple[str, Callable[[], object]]]:
    """name -> (floor name, one decode)."""
    json_doc, xml_doc = documents()
    json_codec, xml_codec = JsonCodec(), XmlCodec()
    runs: dict[str, tuple[str, Callable[[], object]]] = {
        JSON_FLOOR: (JSON_FLOOR, lambda: json.loads(json_doc)),
        "JsonCodec.decode": (JSON_FLOOR, lambda: json_codec.decode(json_doc, MadeBooking)),
        XML_FLOOR: (XML_FLOOR, lambda: etree.fromstring(xml_doc)),
        "XmlCodec.decode": (XML_FLOOR, lambda: xml_codec.decode(xml_doc, MadeBooking)),
    }
    json_page, xml_page = page_documents()
    runs.update(
        {
            JSON_PAGE_FLOOR: (JSON_PAGE_FLOOR, lambda: json.loads(json_page)),
            "JsonCodec.decode, page": (
                JSON_PAGE_FLOOR,
                lambda: json_codec.decode(json_page, MadeBookingsPage),
            ),
            XML_PAGE_FLOOR: (XML_PAGE_FLOOR, lambda: etree.fromstring(xml_page)),
            "XmlCodec.decode, page": (
                XML_PAGE_FLOOR,
                lambda: xml_codec.decode(xml_page, MadeBookingsPage),
            ),
        }
    )
    if with_peers:
        runs.update({name: (JSON_FLOOR, run) for name, run in json_peers(json_doc).items()})
        runs.update({name: (XML_FLOOR, run) for name, run in xml_peers(xml_doc).items()})
    return runs


def interleaved_medians(
    runs: dict[str, Callable[[], object]], rounds: int, per_round: int, heavy: frozenset[str] = frozenset()
) -> dict[str, float]:
    """Median microseconds per call of each function, run interleaved round by round; a ``heavy``
    one (a page of a hundred bookings) is called a fiftieth as often."""
    names = list(runs)
    for name in names:  # warm up: first calls build caches and converters
        for _ in range(3 if name in heavy else min(200, per_round)):
            runs[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            call, calls = runs[name], max(3, per_round // 50) if name in heavy else per_round
            start = clock()
            for _ in range(calls):
                call()
            samples[name].append((clock() - start) / calls / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def measure(rounds: int = 41, per_round: int = 300, with_peers: bool = True) -> list[dict[str, Any]]:
    """The decode table: one row per contender, with its ratio to its floor."""
    runs = contenders(with_peers)
    pages = frozenset(name for name in runs if name.endswith(", page"))
    medians = interleaved_medians({name: run for name, (_, run) in runs.items()}, rounds, per_round, pages)
    rows = []
    for name, (floor, _) in runs.items():
        ratio = medians[name] / medians[floor]
        target = TARGETS.get(name)
        rows.append(
            {
                "contender": name,
                "floor": floor,
                "median_us": round(medians[name], 2),
                "ratio": round(ratio, 2),
                "target": target,
                "met": None if target is None else ratio <= target,
            }
        )
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    print(f"{'decode, per document':<28}{'median µs':>11}{'× floor':>10}{'target':>9}  met")
    for row in rows:
        target = "" if row["target"] is None else f"≤{row['target']}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['contender']:<28}{row['median_us']:>11.2f}{row['ratio']:>10.2f}{target:>9}  {met}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--no-peers", action="store_true", help="only the codecs and their floors")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    rows = measure(args.rounds, args.per_round, not args.no_peers)
    print_rows(rows)
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
