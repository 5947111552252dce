"""How the command line shows things: readable lines for people, JSON for programs."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs

from ..errors import (
    AdultWorkError,
    AlreadyRescheduledError,
    NotStartedError,
    OutcomeUnknownError,
    TokenNotSavedError,
)
from ..models import MadeBooking
from ..phonechat import RescheduleOutcome, Stage

__all__ = [
    "Rerun",
    "booking_line",
    "error_json",
    "error_line",
    "is_done",
    "json_line",
    "message",
    "money",
    "not_started_parts",
    "outcome_json",
    "outcome_line",
    "plural",
    "started_line",
    "summary_line",
    "to_json",
]


_CENTS = Decimal("0.01")


class Rerun(enum.Enum):
    """What running the same command again does to a booking that may have gone through: the
    advice a summary gives depends on it."""

    #: The journal outlives the run: a re-run reconciles first and sends only once it is proven
    #: that the reschedule did not happen (the errors' own advice).
    RECONCILES = "reconciles"
    #: ``--force``: a re-run with it reconciles first too, then sends again even if the booking went
    #: through.
    FORCED = "forced"
    #: No journal outlives the run (``--no-journal``): a re-run knows nothing of this one.
    UNRECORDED = "unrecorded"


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


def error_json(error: AdultWorkError, *, rerun: Rerun = Rerun.RECONCILES) -> dict[str, Any]:
    """An error as machine output: its type, message and the attributes that say why (``rerun``:
    see :func:`message`)."""
    details: dict[str, Any] = {"type": type(error).__name__, "message": message(error, rerun=rerun)}
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
        details["stopped_by"] = error_json(error.stopped_by, rerun=rerun)
    if _unrecorded_lost_answer(error, rerun):
        details["retry_after"] = None  # no wait makes a re-run safe: it would know nothing of this one
    return details


def outcome_json(outcome: RescheduleOutcome, *, rerun: Rerun = Rerun.RECONCILES) -> dict[str, Any]:
    """One booking's outcome as machine output, for ``reschedule`` and ``reconcile`` alike (``rerun``:
    see :func:`message`).

    ``rescheduled`` is true when the booking was rescheduled (now, or before: ``new_booking_id``),
    false when it certainly was not, and null when it may have been.
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
        "error": error_json(error, rerun=rerun) if error else None,
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


def error_line(error: BaseException, *, rerun: Rerun = Rerun.RECONCILES) -> str:
    """An error as people read it: the message, then the type in brackets."""
    return f"{message(error, rerun=rerun)} ({type(error).__name__})"


def _unrecorded_lost_answer(error: BaseException, rerun: Rerun) -> bool:
    # With --no-journal the client's journal lives and dies with the run: its own advice for a
    # reschedule that may have happened ("calling again is safe: it reconciles first") holds for
    # the client, not for running the command again.
    return rerun is Rerun.UNRECORDED and isinstance(error, OutcomeUnknownError) and not error.candidates


def message(error: BaseException, *, rerun: Rerun = Rerun.RECONCILES) -> str:
    """An error's message in this command line's words, where the library's would speak of its
    Python API (``on_refresh``, the hook the command line's credentials file is written by) or
    give advice that does not hold for running the command again (``rerun``: with ``--no-journal``,
    a re-run knows nothing of a reschedule that may have happened)."""
    if _unrecorded_lost_answer(error, rerun):
        return (
            "the reschedule may have happened, but no answer came, and --no-journal kept no record of "
            "it: running this again would send it again; check your bookings first"
        )
    if isinstance(error, TokenNotSavedError):
        why = str(error.__cause__) if error.__cause__ is not None else "they could not be written"
        return (
            f"the refreshed credentials could not be saved ({why}); the refresh token they replace no "
            "longer works, so unless a later try saves them, log in again and set AW_REFRESH_TOKEN"
        )
    return str(error)


def outcome_line(outcome: RescheduleOutcome, *, rerun: Rerun = Rerun.RECONCILES) -> str:
    """One booking of a batch (``rerun``: see :func:`message`)."""
    if outcome.ok and outcome.booking is not None:
        return f"{outcome.booking_id}: rescheduled as {booking_line(outcome.booking)}"
    if isinstance(outcome.error, AlreadyRescheduledError):
        new_id = outcome.error.new_booking_id
        return f"{outcome.booking_id}: already rescheduled into booking {new_id}; nothing sent"
    assert outcome.error is not None
    return f"{outcome.booking_id}: FAILED: {error_line(outcome.error, rerun=rerun)}"


def is_done(outcome: RescheduleOutcome) -> bool:
    """Whether a booking needs nothing more: rescheduled now, or before (the journal says so)."""
    return outcome.ok or isinstance(outcome.error, AlreadyRescheduledError)


def summary_line(outcomes: list[RescheduleOutcome], *, rerun: Rerun) -> str:
    """How a batch went, in one line: the bookings it started, then those it never started, counted
    once per cause (a batch that could not go on says why once, not once a booking). ``rerun``:
    what running it again would do, for the advice about bookings that may have gone through."""
    started = [o for o in outcomes if not isinstance(o.error, NotStartedError)]
    parts = [started_line(started, rerun=rerun)] if started or not outcomes else []
    parts += not_started_parts(outcomes)
    return "; ".join(parts)


def started_line(started: list[RescheduleOutcome], *, rerun: Rerun) -> str:
    """``N bookings: D rescheduled, F failed (kinds)``, and which ones may have gone through, with
    the advice that holds for a re-run (see :class:`Rerun`)."""
    done = sum(outcome.ok for outcome in started)
    before = sum(isinstance(outcome.error, AlreadyRescheduledError) for outcome in started)
    maybe = [outcome.booking_id for outcome in started if outcome.may_have_happened]
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
    if maybe:
        shown = " ".join(map(str, maybe[:10])) + (" ..." if len(maybe) > 10 else "")
        line += f"; {len(maybe)} may have gone through" + _MAYBE_ADVICE[rerun].format(ids=shown)
    return line


_MAYBE_ADVICE = {
    Rerun.RECONCILES: ": running this again is safe (it reconciles them first), or ask now: "
    "aw-async reconcile {ids}",
    Rerun.FORCED: (
        ": running this again without --force is safe (it reconciles them first); with --force it "
        "reconciles them too, then sends them again even if they went through; or ask now: "
        "aw-async reconcile {ids}"
    ),
    Rerun.UNRECORDED: ", and no journal kept a record of it: check your bookings before trying "
    "again: {ids}",
}


def not_started_parts(outcomes: list[RescheduleOutcome]) -> list[str]:
    """``N bookings not started: <cause>``, once per cause (none when every booking started)."""
    causes: dict[int, list[RescheduleOutcome]] = {}  # by the error that stopped the batch
    for outcome in outcomes:
        if isinstance(outcome.error, NotStartedError):
            causes.setdefault(id(outcome.error.stopped_by), []).append(outcome)
    return [f"{plural(len(group), 'booking')} not started: {_cause(group)}" for group in causes.values()]


def _cause(group: list[RescheduleOutcome]) -> str:
    """Why the bookings of ``group`` (all stopped by the same error) were never started."""
    assert isinstance(group[0].error, NotStartedError)
    stopped_by = group[0].error.stopped_by
    if stopped_by is None:
        return "the batch was stopped"
    # The batch reads the balance once, before any POST: the bookings that were waiting for it
    # stopped at that stage (the others never began, for the same reason).
    if any(outcome.stage is Stage.BALANCE for outcome in group):
        return f"the balance could not be read: {error_line(stopped_by)}"
    return error_line(stopped_by)


def plural(count: int, noun: str) -> str:
    """``1 booking``, ``2 bookings``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
