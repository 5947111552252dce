"""How the command line shows things: readable lines for people, JSON for programs."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ._batch import RescheduleOutcome
from .errors import AdultWorkError
from .models import MadeBooking

__all__ = ["booking_line", "error_line", "outcome_line", "plural", "summary_line", "to_json"]


def _plain(value: Any) -> Any:
    # Decimals as strings: a JSON number would be read back as a float by most programs.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if attrs.has(type(value)):
        return {field.name: _plain(getattr(value, field.name)) for field in attrs.fields(type(value))}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def error_json(error: AdultWorkError) -> dict[str, Any]:
    """An error as machine output: its type, message and the attributes that say why."""
    details: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    for name in ("status", "required", "balance", "session_date", "retry_after", "scope", "path"):
        if hasattr(error, name):
            details[name] = _plain(getattr(error, name))
    return details


def to_json(value: Any) -> str:
    """Machine output for a booking, a balance or a batch's outcomes."""
    if isinstance(value, list) and all(isinstance(item, RescheduleOutcome) for item in value):
        value = [
            {
                "booking_id": outcome.booking_id,
                "ok": outcome.ok,
                "booking": _plain(outcome.booking),
                "error": error_json(outcome.error) if outcome.error else None,
            }
            for outcome in value
        ]
    return json.dumps(_plain(value), indent=2, ensure_ascii=False)


def _when(value: datetime | None) -> str:
    if value is None:
        return "-"
    text = value.isoformat(sep=" ", timespec="minutes")
    return text if value.tzinfo else f"{text} (server time)"


def booking_line(booking: MadeBooking) -> str:
    """A booking in one readable line."""
    status = booking.status.value if isinstance(booking.status, enum.Enum) else booking.status
    with_whom = f" with {booking.candidate.nickname}" if booking.candidate else ""
    return (
        f"booking {booking.booking_id}: {status}, {booking.duration} min for {booking.credits} credits"
        f"{with_whom}, session {_when(booking.session_date)}"
    )


def error_line(error: BaseException) -> str:
    """An error as people read it: the message, then the type in brackets."""
    return f"{error} ({type(error).__name__})"


def outcome_line(outcome: RescheduleOutcome) -> str:
    """One booking of a batch."""
    if outcome.ok and outcome.booking is not None:
        return f"{outcome.booking_id}: rescheduled as {booking_line(outcome.booking)}"
    assert outcome.error is not None
    return f"{outcome.booking_id}: FAILED: {error_line(outcome.error)}"


def summary_line(outcomes: list[RescheduleOutcome]) -> str:
    """How a batch went, in one line."""
    done = sum(outcome.ok for outcome in outcomes)
    kinds: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            kinds[type(outcome.error).__name__] = kinds.get(type(outcome.error).__name__, 0) + 1
    failed = ", ".join(f"{count} {name}" for name, count in sorted(kinds.items()))
    return f"{plural(len(outcomes), 'booking')}: {done} rescheduled, {len(outcomes) - done} failed" + (
        f" ({failed})" if failed else ""
    )


def plural(count: int, noun: str) -> str:
    """``1 booking``, ``2 bookings``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
