"""Per-document decode of a MadeBooking, against the floor of parsing alone.

    python -m benchmarks.decode [--rounds N] [--json FILE]

The floors are the cost no typed decoder can avoid: ``json.loads`` for JSON, ``lxml.etree.fromstring``
for XML. Every contender runs interleaved with its floor, round after round in a rotating order, so
that a noisy neighbour slows all of them alike; each figure is the median over the rounds, and the
ratios are to the floor measured in the same run. Targets (issue #2): JSON at most 1.8x, XML at most
3.0x.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import MadeBooking

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
TARGETS = {"JsonCodec.decode": 1.8, "XmlCodec.decode": 3.0}


def documents() -> tuple[bytes, bytes]:
    """The seed's booking, as the server writes it: compact JSON and compact DataContract XML."""
    json_codec, xml_codec = JsonCodec(), XmlCodec()
    booking = json_codec.decode((FIXTURES / "made_booking.json").read_bytes(), MadeBooking)
    return json_codec.encode(booking), xml_codec.encode(booking)


def contenders() -> dict[str, tuple[str, Callable[[], object]]]:
    """name -> (floor name, one decode)."""
    json_doc, xml_doc = documents()
    json_codec, xml_codec = JsonCodec(), XmlCodec()
    return {
        "json.loads": ("json.loads", lambda: json.loads(json_doc)),
        "JsonCodec.decode": ("json.loads", lambda: json_codec.decode(json_doc, MadeBooking)),
        "lxml.etree.fromstring": ("lxml.etree.fromstring", lambda: etree.fromstring(xml_doc)),
        "XmlCodec.decode": ("lxml.etree.fromstring", lambda: xml_codec.decode(xml_doc, MadeBooking)),
    }


def measure(rounds: int, per_round: int) -> dict[str, float]:
    """Median microseconds per document for each contender, interleaved round by round."""
    runs = contenders()
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for name in names:  # warm up: first calls build caches and converters
        for _ in range(200):
            runs[name][1]()
    clock = time.perf_counter_ns
    for round_no in range(rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            decode = runs[name][1]
            start = clock()
            for _ in range(per_round):
                decode()
            samples[name].append((clock() - start) / per_round / 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def report(medians: dict[str, float]) -> list[dict[str, object]]:
    rows = []
    floors = {name: floor for name, (floor, _) in contenders().items()}
    for name, micros in medians.items():
        ratio = micros / medians[floors[name]]
        target = TARGETS.get(name)
        rows.append(
            {
                "contender": name,
                "floor": floors[name],
                "median_us": round(micros, 2),
                "ratio": round(ratio, 2),
                "target": target,
                "met": None if target is None else ratio <= target,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=41)
    parser.add_argument("--per-round", type=int, default=300)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    rows = report(measure(args.rounds, args.per_round))
    print(f"{'contender':<24}{'median µs':>11}{'× floor':>10}{'target':>9}  met")
    for row in rows:
        target = "" if row["target"] is None else f"≤{row['target']}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        print(f"{row['contender']:<24}{row['median_us']:>11.2f}{row['ratio']:>10.2f}{target:>9}  {met}")
    if args.json:
        args.json.write_text(json.dumps({"python": sys.version, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
