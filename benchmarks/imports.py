"""Import time of ``aw_async`` against ``aiohttp`` (which it imports), each in a fresh interpreter.

python -m benchmarks.imports
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from typing import Any

_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def import_seconds(module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def measure(rounds: int = 15) -> dict[str, Any]:
    samples: dict[str, list[float]] = {"aiohttp": [], "aw_async": []}
    for _ in range(rounds):  # interleaved, so both see the same machine
        for module in samples:
            samples[module].append(import_seconds(module))
    medians = {module: statistics.median(values) for module, values in samples.items()}
    return {
        "aiohttp_ms": round(medians["aiohttp"] * 1000, 1),
        "aw_async_ms": round(medians["aw_async"] * 1000, 1),
        "ratio": round(medians["aw_async"] / medians["aiohttp"], 2),
    }


def main() -> int:
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
