"""The targets of "Speed of the safe path": each row with the issue's figure and today's.

``python -m benchmarks`` (and ``python -m benchmarks.cpu``) prints it after the sections, from the
figures just measured; a row whose section was not run (or whose journal could not be had) says so.
Every figure is a ratio of medians from one run, so a slower or faster machine moves both sides: for
CPU, the floor's CPU per booking divided by the variant's (higher is cheaper); for the journals,
bookings per second with that journal divided by the same batch's with a MemoryJournal. The
"before" column is copied from the issue (measured before any of its work), so that a run shows the
way travelled, not only where it ended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

Figures = dict[str, Any]
DEFAULT_JOURNAL = "sqlite"  # journal=None: a durable SqliteJournal


@attrs.frozen
class Target:
    """One row: what is measured, the issue's figure, the target (a ratio to reach), how to read it."""

    what: str
    before: str
    target: float
    section: str
    read: Callable[[Figures], float | None]
    """Today's ratio, or None when a variant it needs was not run (no PostgreSQL, say)."""

    def judge(self, figures: Figures) -> tuple[str, str]:
        """Today's figure as text, and whether it meets the target ("yes", "NO", "not run", "n/a")."""
        if self.section not in figures:
            return "", "not run"
        value = self.read(figures)
        if value is None:
            return "", "n/a"
        return f"{value:.2f}x", "yes" if value >= self.target else "NO"

    @property
    def goal(self) -> str:
        return f"≥{self.target:.2f}x"


def _cpu(kind: str, format: str = "json", checks: bool = False, journal: str | None = None) -> Any:
    def read(figures: Figures) -> Any:
        for row in figures["cpu"]["rows"]:
            if (row["kind"], row["format"], row["checks"], row["journal"]) == (kind, format, checks, journal):
                return row.get("cpu_us_per_booking")
        return None

    return read


def _floor_ratio(kind: str, format: str = "json", checks: bool = False, journal: str = "memory") -> Any:
    """The floor's CPU per booking ÷ the variant's (the floor of the same format)."""
    return _ratio(_cpu("floor", format), _cpu(kind, format, checks, journal))


def _ratio(numerator: Any, denominator: Any) -> Callable[[Figures], float | None]:
    def read(figures: Figures) -> float | None:
        top, bottom = numerator(figures), denominator(figures)
        return None if top is None or bottom is None else top / bottom

    return read


def _journal_rate(journal: str) -> Callable[[Figures], float | None]:
    """The worse of the checked and unchecked batches: ``journal``'s rate ÷ MemoryJournal's."""

    def read(figures: Figures) -> float | None:
        ratios = [row[f"{journal}_ratio"] for row in figures["journal"] if row.get(f"{journal}_ratio")]
        return min(ratios) if ratios else None

    return read


TARGETS = (
    Target(
        "checked single, default journal: hand ÷ library",
        "0.67x",
        1.0,
        "cpu",
        _ratio(_cpu("hand", checks=True), _cpu("single", checks=True, journal=DEFAULT_JOURNAL)),
    ),
    Target("single, checks off, MemoryJournal", "0.71x", 0.90, "cpu", _floor_ratio("single")),
    Target(
        "single, checks off, default journal",
        "not measured",
        0.80,
        "cpu",
        _floor_ratio("single", journal=DEFAULT_JOURNAL),
    ),
    Target("batch, checks off, MemoryJournal", "0.94x", 1.0, "cpu", _floor_ratio("batch")),
    Target(
        "batch, checks on, MemoryJournal", "not measured", 0.60, "cpu", _floor_ratio("batch", checks=True)
    ),
    Target("XML batch, checks off, ÷ XML floor", "0.86x", 0.90, "cpu", _floor_ratio("batch", "xml")),
    Target(
        "SqliteJournal batch ÷ MemoryJournal (CPU)",
        "not measured",
        0.85,
        "cpu",
        _ratio(_cpu("batch", journal="memory"), _cpu("batch", journal="sqlite")),
    ),
    Target(
        "SqliteJournal batch rate ÷ MemoryJournal", "0.71-0.73x", 0.85, "journal", _journal_rate("sqlite")
    ),
    Target(
        "PostgresJournal batch rate ÷ MemoryJournal",
        "not measured",
        0.60,
        "journal",
        _journal_rate("postgres"),
    ),
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
    print('"Speed of the safe path": targets (ratios of medians from this run; higher is better)')
    print(f"{'what':<46}{'before':>13}{'today':>9}{'target':>9}  met")
    for row in table:
        print(f"{row['what']:<46}{row['before']:>13}{row['today']:>9}{row['target']:>9}  {row['met']}")
