"""Where one variant's CPU per booking goes: a profile by layer, and the threads' shares.

    python -m benchmarks.profiling [--kind single|batch] [--checks] [--journal memory|sqlite]
                                 [--format json|xml] [--bookings 3000] [--top 25]

The variant (as :mod:`.cpu` runs it, against the lean server in another process) runs twice in this
process after a warm-up: once plain, for its CPU per booking in total (``getrusage``, which counts
threads that have ended, such as a closed journal's sqlite writer) and on the event loop's thread
(``time.thread_time``), the rest being the other threads' (the sqlite writer's); and once under
:mod:`cProfile` timed by each thread's own CPU clock (so that a wait in ``epoll`` or on a queue
costs nothing), its self times grouped by layer (by the module a function lives in) and scaled to
the plain run's CPU, so that each layer gets an estimate in microseconds per booking. The sqlite
writer's thread is profiled too (its private ``SqliteWriter._run`` wrapped for the run). cProfile
adds its own cost to every call (small functions look dearer than they are): read the layers as
shares, and the top functions as where to look, not as exact figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import resource
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from ._cpu_variants import Variant, open_variant
from .cpu import WARM_UP_FIRST
from .e2e import lean_server

#: (layer, module path prefixes), first match wins; cProfile's file names are matched.
LAYERS = (
    ("journal", ("aw_async/journal/",)),
    ("guard, flight, batch", ("aw_async/phonechat/_guard", "aw_async/phonechat/_batch", "aw_async/_tasks")),
    ("service and rules", ("aw_async/phonechat/", "aw_async/_credit_history")),
    ("codecs (decode)", ("aw_async/codecs/",)),
    ("models", ("aw_async/models", "aw_async/_params", "aw_async/errors")),
    (
        "Caller.call, protocol, transport",
        (
            "aw_async/_caller",
            "aw_async/_protocol",
            "aw_async/_transport",
            "aw_async/_exchange",
            "aw_async/_gate",
            "aw_async/_retry",
            "aw_async/_tokens",
            "aw_async/_server_clock",
            "aw_async/_tracing",
            "aw_async/_redact",
            "aw_async/_clock",
            "aw_async/_endpoints",
        ),
    ),
    ("aw_async (other)", ("aw_async/",)),
    ("benchmark harness", ("benchmarks/",)),
    ("aiohttp, yarl, multidict", ("aiohttp/", "yarl/", "multidict/", "aiohappyeyeballs/", "propcache/")),
    ("asyncio", ("asyncio/",)),
    ("logging", ("logging/",)),
    ("attrs, cattrs", ("attr/", "attrs/", "cattrs/")),
    (
        "datetime, decimal, sqlite3, queue, threading",
        ("datetime", "decimal", "sqlite3/", "queue", "threading"),
    ),
)


def layer_of(filename: str, function: str) -> str:
    for layer, prefixes in LAYERS:
        if any(prefix in filename for prefix in prefixes):
            return layer
    if filename == "~":  # a built-in: by its name
        lowered = function.lower()
        if "sqlite" in lowered or "queue" in lowered or "lock" in lowered:
            return "datetime, decimal, sqlite3, queue, threading"
        if "select" in lowered or "epoll" in lowered or "socket" in lowered or "send" in lowered:
            return "sockets, selectors (built-ins)"
        return "other built-ins"
    if "selectors" in filename or "socket" in filename:
        return "sockets, selectors (built-ins)"
    return "other Python"


def this_thread_cpu() -> float:
    """CPU seconds (user + system) of the calling thread."""
    return time.thread_time()


def process_cpu() -> float:
    """CPU seconds (user + system) of every thread of this process, ended ones included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one_run(variant: Variant, base: str, ids: range, warm_up: range, journal: str | None) -> None:
    async with open_variant(variant, base, 50, journal, warm_up) as run:
        await run(ids)


def measure(variant: Variant, base: str, bookings: int, journal: str | None, top: int) -> dict[str, Any]:
    # A first run imports and builds what the variant needs once per process (pydantic's models,
    # aiohttp's lazy imports), which is no booking's cost.
    asyncio.run(_one_run(variant, base, range(0), range(WARM_UP_FIRST + 100, WARM_UP_FIRST + 150), journal))
    ids, warm = range(1, bookings + 1), range(WARM_UP_FIRST, WARM_UP_FIRST + 50)
    loop_before, all_before = this_thread_cpu(), process_cpu()
    started = time.perf_counter()
    with writer_threads(profile=False) as writers:
        asyncio.run(_one_run(variant, base, ids, warm, journal))
    seconds = time.perf_counter() - started
    loop_after, all_after = this_thread_cpu(), process_cpu()
    # The warm-up is in these figures: per booking, it is counted over bookings + 50.
    count = bookings + len(warm)
    loop_cpu = (loop_after - loop_before) / count * 1e6
    others = max((all_after - all_before) - (loop_after - loop_before), 0.0) / count * 1e6
    profiler = cProfile.Profile(time.thread_time)  # CPU time: a wait (epoll, a queue) costs nothing
    ids = range(bookings + 1, 2 * bookings + 1)
    warm = range(WARM_UP_FIRST + 50, WARM_UP_FIRST + 100)
    with writer_threads(profile=True) as profiled_writers:
        profiler.enable()
        asyncio.run(_one_run(variant, base, ids, warm, journal))
        profiler.disable()
    writer: dict[str, Any] = {}
    if writers is not None and writers.user + writers.system > 0:
        writer["user_us"] = round(writers.user / count * 1e6, 1)
        writer["system_us"] = round(writers.system / count * 1e6, 1)
    if profiled_writers is not None and profiled_writers.profilers:
        thread_stats = pstats.Stats(*profiled_writers.profilers)
        thread_total = sum(e[2] for e in thread_stats.stats.values())  # type: ignore[attr-defined]
        thread_scale = (writers.user + writers.system) / count * 1e6 / thread_total if writers else 0.0
        rows = sorted(
            (
                (tottime * thread_scale, calls / count, f"{_short(filename)}:{line}({function})")
                for (filename, line, function), (_, calls, tottime, _, _) in thread_stats.stats.items()  # type: ignore[attr-defined]
            ),
            reverse=True,
        )
        writer["top"] = [
            {"function": name, "us_per_booking": round(us, 2), "calls_per_booking": round(calls, 3)}
            for us, calls, name in rows[:top]
        ]
    stats = pstats.Stats(profiler)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    by_layer: dict[str, float] = {}
    by_file: dict[str, float] = {}
    functions = []
    for (filename, line, function), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        layer = layer_of(filename, function)
        by_layer[layer] = by_layer.get(layer, 0.0) + tottime
        where = _short(filename) if filename != "~" else f"built-in {function}"
        by_file[where] = by_file.get(where, 0.0) + tottime
        functions.append((tottime, calls, cumtime, f"{_short(filename)}:{line}({function})", layer))
    scale = loop_cpu / total
    functions.sort(reverse=True)
    return {
        "variant": variant.label,
        "journal": variant.journal,
        "format": variant.format,
        "bookings_per_s": round(count / seconds),
        "loop_thread_us": round(loop_cpu, 1),
        "other_threads_us": round(others, 1),
        "writer_thread": writer,
        "layers_us": {k: round(v * scale, 1) for k, v in sorted(by_layer.items(), key=lambda kv: -kv[1])},
        "files_us": {k: round(v * scale, 1) for k, v in sorted(by_file.items(), key=lambda kv: -kv[1])[:top]},
        "top": [
            {
                "function": name,
                "layer": layer,
                "us_per_booking": round(tottime * scale, 2),
                "calls_per_booking": round(calls / count, 2),
                "cumulative_us": round(cumtime * scale, 1),
            }
            for tottime, calls, cumtime, name, layer in functions[:top]
        ],
    }


_ROOT = str(Path(__file__).resolve().parent.parent) + "/"


def _short(filename: str) -> str:
    if filename.startswith(_ROOT):
        return filename[len(_ROOT) :]
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


@attrs.define
class WriterThreads:
    """The sqlite writer threads of one run: their user and system CPU, and (when asked) a profile."""

    profile: bool
    user: float = 0.0
    system: float = 0.0
    profilers: list[cProfile.Profile] = attrs.Factory(list)


@contextlib.contextmanager
def writer_threads(profile: bool) -> Iterator[WriterThreads | None]:
    """Watch the SqliteJournal's writer threads started meanwhile (None if the journal's private
    ``SqliteWriter._run`` has moved: then nothing is watched). The library is not changed: its
    method is wrapped for the run and put back."""
    try:
        from aw_async.journal._writer import SqliteWriter
    except ImportError:
        yield None
        return
    original = getattr(SqliteWriter, "_run", None)
    if original is None:
        yield None
        return
    seen = WriterThreads(profile)

    def watched(self: Any, *args: Any) -> Any:
        profiler = cProfile.Profile(time.thread_time) if profile else None
        start = resource.getrusage(resource.RUSAGE_THREAD)
        if profiler is not None:
            profiler.enable()
        try:
            return original(self, *args)
        finally:
            if profiler is not None:
                profiler.disable()
                seen.profilers.append(profiler)
            end = resource.getrusage(resource.RUSAGE_THREAD)
            seen.user += end.ru_utime - start.ru_utime
            seen.system += end.ru_stime - start.ru_stime

    SqliteWriter._run = watched  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        SqliteWriter._run = original  # type: ignore[method-assign]


def print_figures(figures: dict[str, Any]) -> None:
    print(
        f"{figures['variant']} ({figures['format']}, {figures['journal'] or 'no journal'}): "
        f"{figures['loop_thread_us'] + figures['other_threads_us']:.0f} µs of CPU per booking: "
        f"{figures['loop_thread_us']:.0f} on the event loop's thread, {figures['other_threads_us']:.0f} on "
        f"the others; {figures['bookings_per_s']} bookings/s (unprofiled)"
    )
    print("the event loop's thread by layer (cProfile self time, scaled to the unprofiled figure):")
    for layer, us in figures["layers_us"].items():
        print(f"  {layer:<48}{us:>8.1f} µs")
    print("the files (or built-ins) with the most self time:")
    for where, us in figures["files_us"].items():
        print(f"  {us:>8.1f} µs  {where}")
    writer = figures["writer_thread"]
    if writer:
        print(
            f"the sqlite writer's thread: {writer['user_us']:.0f} µs user + {writer['system_us']:.0f} µs "
            "system per booking; its functions with the most self time (scaled to that):"
        )
        for row in writer.get("top", []):
            print(f"  {row['us_per_booking']:>10.2f}{row['calls_per_booking']:>15.3f}  {row['function']}")
    print("the event loop's functions with the most self time:")
    print(f"  {'µs/booking':>10}{'calls/booking':>15}{'cumulative':>12}  function")
    for row in figures["top"]:
        print(
            f"  {row['us_per_booking']:>10.2f}{row['calls_per_booking']:>15.2f}{row['cumulative_us']:>12.1f}"
            f"  {row['function']}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kind", default="single", help="single, batch, floor, hand, pydantic, ...")
    parser.add_argument("--checks", action="store_true")
    parser.add_argument("--journal", choices=("memory", "sqlite"), default="sqlite")
    parser.add_argument("--format", choices=("json", "xml"), default="json")
    parser.add_argument("--bookings", type=int, default=3000)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    library = args.kind in ("single", "batch")
    variant = Variant(
        args.kind, args.format, args.checks or args.kind == "hand", args.journal if library else None
    )
    with lean_server() as base, tempfile.TemporaryDirectory() as scratch:
        journal = str(Path(scratch) / "journal.sqlite3") if variant.journal == "sqlite" else None
        print_figures(measure(variant, base, args.bookings, journal, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
