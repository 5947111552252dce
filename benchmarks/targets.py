"""Issue #13's table: each target row with the figure the issue started from and today's.

``python -m benchmarks`` prints it after the sections, from the figures it has just measured; a row
whose section was not run says so. The "before" column is copied from the issue (measured before
the fast paths and the lighter journal path), so that a run shows the way travelled, not only
where it ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

Figures = dict[str, Any]


@attrs.frozen
class Target:
    """One row: what is measured, the issue's figure, the target, and how to read today's."""

    what: str
    before: str
    target: float
    at_most: bool
    """True for a ratio that must stay under the target (a cost), False for one that must reach it."""
    section: str
    read: Callable[[Figures], float]
    unit: str = "x"

    def judge(self, figures: Figures) -> tuple[str, str]:
        """Today's figure as text, and whether it meets the target ("yes", "NO", or "not run")."""
        if self.section not in figures:
            return "", "not run"
        value = self.read(figures)
        met = value <= self.target if self.at_most else value >= self.target
        shown = f"{value:.0f} B" if self.unit == "B" else f"{value:.2f}x"
        return shown, "yes" if met else "NO"

    @property
    def goal(self) -> str:
        bound = "≤" if self.at_most else "≥"
        return f"{bound}{self.target:.0f} B" if self.unit == "B" else f"{bound}{self.target}x"


def _decode(name: str) -> Callable[[Figures], float]:
    return lambda figures: next(r["ratio"] for r in figures["decode"] if r["contender"] == name)


def _e2e(format: str, checks: bool) -> Callable[[Figures], float]:
    def read(figures: Figures) -> float:
        return next(
            r["ratio"]
            for r in figures["e2e"]
            if r["client"] == "AdultWorkClient" and r["format"] == format and r["checks"] is checks
        )

    return read


def _memory(figures: Figures) -> float:
    memory = figures["memory"]
    return float(max(memory["bytes_per_booking_json"], memory["bytes_per_booking_xml"]))


TARGETS = (
    Target("JSON decode of a MadeBooking", "2.2x", 1.2, True, "decode", _decode("JsonCodec.decode")),
    Target("XML decode of a MadeBooking", "3.0x", 2.0, True, "decode", _decode("XmlCodec.decode")),
    Target(
        "JSON decode of a 100-booking page",
        "not measured",
        1.2,
        True,
        "decode",
        _decode("JsonCodec.decode, page"),
    ),
    Target(
        "XML decode of a 100-booking page",
        "not measured",
        2.0,
        True,
        "decode",
        _decode("XmlCodec.decode, page"),
    ),
    Target("end to end, JSON, checks off", "0.71x", 0.85, False, "e2e", _e2e("json", False)),
    Target("end to end, XML, checks off", "0.55x", 0.70, False, "e2e", _e2e("xml", False)),
    Target("end to end, JSON, checks on", "0.65x", 0.85, False, "e2e", _e2e("json", True)),
    Target("end to end, XML, checks on", "0.46x", 0.70, False, "e2e", _e2e("xml", True)),
    Target("memory per decoded booking", "1162 B", 1331, True, "memory", _memory, unit="B"),
)


def rows(figures: Figures) -> list[dict[str, Any]]:
    """The table, as data (it goes into the JSON figures too)."""
    table = []
    for target in TARGETS:
        today, met = target.judge(figures)
        table.append(
            {"what": target.what, "before": target.before, "today": today, "target": target.goal, "met": met}
        )
    return table


def print_rows(table: list[dict[str, Any]]) -> None:
    print("issue #13's targets (ratios to a floor measured in the same run)")
    print(f"{'what':<36}{'before':>14}{'today':>10}{'target':>10}  met")
    for row in table:
        print(f"{row['what']:<36}{row['before']:>14}{row['today']:>10}{row['target']:>10}  {row['met']}")
