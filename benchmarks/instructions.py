"""Instructions per booking under callgrind: a count that a busy machine does not move.

    python -m benchmarks.instructions [--small 200] [--large 1200] [--only floor,hand,...]
    python -m benchmarks.instructions --layers checked      # the ladders of benchmarks.layers

CPU time on a shared machine moves with the other processes (a loaded 2-core box moves a figure
by a quarter). Valgrind's callgrind counts the instructions the client process executes in user
space, every thread of it, whatever else runs. Each variant of :mod:`.cpu` runs twice under it,
over ``small`` and ``large`` bookings; the difference divided by ``large - small`` is what one more
booking costs, with the interpreter's start, the imports, the opening and the warm-up cancelled out.
It is split by the shared object the instructions ran in (the interpreter, libc, sqlite, pydantic's
core, the codecs' C extensions). Kernel time (the socket system calls, ``fsync``) is not counted:
the floor's share of it is in its CPU time, not here. Needs ``valgrind`` on PATH; slow (minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import attrs

from ._cpu_variants import Variant
from .e2e import lean_server
from .layers import CHECKED, UNCHECKED

VARIANTS = {
    "floor": Variant("floor"),
    "pydantic": Variant("pydantic"),
    "hand": Variant("hand", checks=True),
    "single-off-memory": Variant("single", journal="memory"),
    "batch-off-memory": Variant("batch", journal="memory"),
    "batch-off-sqlite": Variant("batch", journal="sqlite"),
    "single-on-memory": Variant("single", checks=True, journal="memory"),
    "single-on-sqlite": Variant("single", checks=True, journal="sqlite"),
    "batch-on-memory": Variant("batch", checks=True, journal="memory"),
    "floor-xml": Variant("floor", "xml"),
    "batch-off-memory-xml": Variant("batch", "xml", journal="memory"),
}
_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+(.*?)(?:\s+\[(.*)\])?\s*$")


def _objects(out_file: Path) -> dict[str, int]:
    """Self instructions by shared object, from callgrind_annotate's per-function listing."""
    listing = subprocess.run(
        ["callgrind_annotate", "--threshold=100", "--inclusive=no", str(out_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    by_object: dict[str, int] = {}
    started = False
    for line in listing.splitlines():
        if "file:function" in line:
            started = True
            continue
        match = _LINE.match(line) if started else None
        if match:
            where = Path(match.group(3)).name if match.group(3) else "?"
            by_object[where] = by_object.get(where, 0) + int(match.group(1).replace(",", ""))
    return by_object


def _command(name: str, base: str, bookings: int) -> list[str]:
    """The run of one variant, or of one layer of :mod:`.layers` (``layer:checked:NAME``,
    ``layer:unchecked:NAME``), over ``bookings``."""
    if name.startswith("layer:"):
        _, ladder, layer = name.split(":", 2)
        checks = str(ladder == "checked")
        return ["benchmarks.layers", "--one", base, layer, str(bookings), "json", checks]
    spec = json.dumps(attrs.asdict(VARIANTS[name]))
    return ["benchmarks.cpu", "--one", spec, base, str(bookings), "50", ""]


def count(name: str, base: str, bookings: int, scratch: Path) -> dict[str, int]:
    """The instructions of one run (a fresh interpreter), by shared object."""
    out_file = scratch / f"callgrind.{bookings}.out"
    subprocess.run(
        [
            "valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
            sys.executable, "-m", *_command(name, base, bookings),
        ],
        capture_output=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    return _objects(out_file)


def known(name: str) -> bool:
    if name.startswith("layer:"):
        parts = name.split(":", 2)
        ladder = CHECKED if parts[1] == "checked" else UNCHECKED
        return len(parts) == 3 and parts[2] in ladder
    return name in VARIANTS


def measure(names: list[str], small: int, large: int) -> list[dict[str, Any]]:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    rows = []
    with lean_server() as base:
        for name in names:
            variant = VARIANTS.get(name, Variant("floor"))  # a layer: JSON, compared with the JSON floor
            with tempfile.TemporaryDirectory() as scratch:
                few = count(name, base, small, Path(scratch))
                many = count(name, base, large, Path(scratch))
            per = {k: (many.get(k, 0) - few.get(k, 0)) / (large - small) for k in set(few) | set(many)}
            rows.append(
                {
                    "name": name,
                    "label": name if name.startswith("layer:") else variant.label,
                    "format": variant.format,
                    "journal": variant.journal,
                    "instructions_per_booking": round(sum(per.values())),
                    "by_object": {
                        k: round(v) for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v >= 500
                    },
                }
            )
            floor = next(
                (r for r in rows if r["name"].startswith("floor") and r["format"] == variant.format), None
            )
            print_row(rows[-1], floor or rows[0])
    return rows


def print_row(row: dict[str, Any], floor: dict[str, Any]) -> None:
    total = row["instructions_per_booking"]
    ratio = floor["instructions_per_booking"] / total if total else 0.0
    split = ", ".join(f"{k} {v / 1000:.0f}k" for k, v in list(row["by_object"].items())[:6])
    print(
        f"{row['name']:<22}{total / 1000:>8.0f}k instr/booking  ({floor['name']} ÷ it: {ratio:.2f})  {split}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=1200)
    parser.add_argument("--only", default=",".join(VARIANTS), help=f"some of: {', '.join(VARIANTS)}")
    parser.add_argument(
        "--layers", choices=("checked", "unchecked"), help="count a ladder of benchmarks.layers instead"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    names = args.only.split(",")
    if args.layers:
        names = [
            f"layer:{args.layers}:{layer}" for layer in (CHECKED if args.layers == "checked" else UNCHECKED)
        ]
        names = ["floor", *names]
    if unknown := [name for name in names if not known(name)]:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    rows = measure(names, args.small, args.large)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
