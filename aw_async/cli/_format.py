"""How the command line shows things: readable lines for people, JSON for programs."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ..errors import AdultWorkError, AlreadyRescheduledError, NotStartedError
from ..models import MadeBooking
from ..phonechat import RescheduleOutcome

__all__ = [
    "booking_line",
    "error_json",
    "error_line",
    "is_done",
    "json_line",
    "money",
    "outcome_json",
    "outcome_line",
    "plural",
    "summary_line",
    "to_json",
]


_CENTS = Decimal("0.01")


def money(value: Decimal) -> str:
    """Credits as people read them, the same whatever the wire format wrote (``8``, ``8.0`` and
    ``8.0000`` are all ``8.00``): two places at least, more only when the value has them."""
    if not value.is_finite():
        return str(value)
    exact = value.normalize()
    if exact.as_tuple().exponent >= -2:  # type: ignore[operator]
        return str(value.quantize(_CENTS))
    return format(exact, "f")


def _plain(value: Any) -> Any:
    # Decimals as strings: a JSON number would be read back as a float by most programs.
    if isinstance(value, Decimal):
        return money(value)
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
    for name in (
        "status",
        "required",
        "offered",
        "balance",
        "session_date",
        "retry_after",
        "scope",
        "path",
        "field",
        "new_booking_id",
        "candidates",
        "since",
    ):
        if hasattr(error, name):
            details[name] = _plain(getattr(error, name))
    if isinstance(error, NotStartedError) and error.stopped_by is not None:
        details["stopped_by"] = error_json(error.stopped_by)
    return details


def outcome_json(outcome: RescheduleOutcome) -> dict[str, Any]:
    """One booking's outcome as machine output, for ``reschedule`` and ``reconcile`` alike.

    ``rescheduled`` is true when the booking was rescheduled (now, or before: ``new_booking_id``),
    false when it certainly was not, and null when it may have been (check before trying again).
    """
    error = outcome.error
    if outcome.ok or isinstance(error, AlreadyRescheduledError):
        rescheduled: bool | None = True
    else:
        rescheduled = None if outcome.may_have_happened else False
    new_id = outcome.booking.booking_id if outcome.booking is not None else None
    if isinstance(error, AlreadyRescheduledError):
        new_id = error.new_booking_id
    return {
        "booking_id": outcome.booking_id,
        "ok": outcome.ok,
        "rescheduled": rescheduled,
        "new_booking_id": new_id,
        "may_have_happened": outcome.may_have_happened,
        "stage": outcome.stage.value if outcome.stage is not None else None,
        "booking": _plain(outcome.booking),
        "error": error_json(error) if error else None,
    }


def json_line(value: Any) -> str:
    """One line of machine output: compact, ASCII-only."""
    return json.dumps(_plain(value), ensure_ascii=True)


def to_json(value: Any) -> str:
    """Machine output for a booking, a list of bookings or a balance: indented, ASCII-only."""
    return json.dumps(_plain(value), indent=2, ensure_ascii=True)


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
        f"booking {booking.booking_id}: {status}, {booking.duration} min for {money(booking.credits)} credits"
        f"{with_whom}, session {_when(booking.session_date)}"
    )


def error_line(error: BaseException) -> str:
    """An error as people read it: the message, then the type in brackets."""
    return f"{error} ({type(error).__name__})"


def outcome_line(outcome: RescheduleOutcome) -> str:
    """One booking of a batch."""
    if outcome.ok and outcome.booking is not None:
        return f"{outcome.booking_id}: rescheduled as {booking_line(outcome.booking)}"
    if isinstance(outcome.error, AlreadyRescheduledError):
        new_id = outcome.error.new_booking_id
        return f"{outcome.booking_id}: already rescheduled into booking {new_id}; nothing sent"
    assert outcome.error is not None
    return f"{outcome.booking_id}: FAILED: {error_line(outcome.error)}"


def is_done(outcome: RescheduleOutcome) -> bool:
    """Whether a booking needs nothing more: rescheduled now, or before (the journal says so)."""
    return outcome.ok or isinstance(outcome.error, AlreadyRescheduledError)


def summary_line(outcomes: list[RescheduleOutcome]) -> str:
    """How a batch went, in one line (the bookings never started are counted apart, by cause)."""
    started = [o for o in outcomes if not isinstance(o.error, NotStartedError)]
    done = sum(outcome.ok for outcome in started)
    before = sum(isinstance(outcome.error, AlreadyRescheduledError) for outcome in started)
    may = sum(outcome.may_have_happened for outcome in started)
    kinds: dict[str, int] = {}
    for outcome in started:
        if not is_done(outcome):
            kinds[type(outcome.error).__name__] = kinds.get(type(outcome.error).__name__, 0) + 1
    failed = ", ".join(f"{count} {name}" for name, count in sorted(kinds.items()))
    already = f", {before} already rescheduled" if before else ""
    line = (
        f"{plural(len(started), 'booking')}: {done} rescheduled{already}, "
        f"{len(started) - done - before} failed" + (f" ({failed})" if failed else "")
    )
    if may:
        line += f"; {may} may have gone through: check them (reconcile) before trying again"
    return line + not_started_line(outcomes)


def not_started_line(outcomes: list[RescheduleOutcome]) -> str:
    """``; N bookings not started: <cause>``, once per cause (empty when every booking started)."""
    causes: dict[str, int] = {}
    for outcome in outcomes:
        if isinstance(outcome.error, NotStartedError):
            stopped_by = outcome.error.stopped_by
            cause = error_line(stopped_by) if stopped_by is not None else "the batch was stopped"
            causes[cause] = causes.get(cause, 0) + 1
    return "".join(f"; {plural(count, 'booking')} not started: {cause}" for cause, count in causes.items())


def plural(count: int, noun: str) -> str:
    """``1 booking``, ``2 bookings``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
