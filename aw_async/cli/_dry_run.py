"""``aw-async reschedule --dry-run``: what a batch would do, what it would spend, and which bookings
the balance would not cover; nothing is sent that changes anything.

The bookings are those of the batch, in its order: the ones ``--passed-since`` finds (the journal
already left out those it knows are rescheduled), then the ids given. An id is looked at as the batch
would look at it: the journal first (rescheduled already: nothing would be sent, unless
``--force``), then its details (a booking that cannot be read) and its session (not passed yet).
The balance is then spent in that order, as a batch of one at a time would spend it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

import attrs

from .._client import AdultWorkClient
from ..errors import (
    AdultWorkError,
    AlreadyRescheduledError,
    InsufficientCreditsError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionError,
)
from ..journal import AttemptState, Key
from ..models import MadeBooking
from ..phonechat._prerequisites import check_session_passed
from ._exit import EXIT_OK
from ._format import booking_line, error_json, error_line, json_line, money, plural

__all__ = ["dry_run"]


@attrs.frozen
class _Skipped:
    """A booking the batch would not reschedule, and why."""

    booking_id: int
    why: AdultWorkError


async def dry_run(
    aw: AdultWorkClient,
    ids: list[int],
    *,
    passed_since: timedelta | None,
    include_reschedules: bool,
    force: bool,
    as_json: bool,
) -> int:
    """Print one line per booking (one JSON object with ``as_json``), then what it comes to."""
    plan: list[MadeBooking | _Skipped] = []
    if passed_since is not None:
        listing = aw.phonechat.passed_bookings(since=passed_since, include_reschedules=include_reschedules)
        plan = [booking async for booking in listing]
    listed = {item.booking_id for item in plan}
    for booking_id in dict.fromkeys(ids):
        if booking_id not in listed:
            plan.append(await _look_at(aw, booking_id, force=force))
    balance = await aw.credit_history.get_current_credit_balance()
    left, covered, short, skipped = balance, 0, [], 0
    for item in plan:
        if isinstance(item, _Skipped):
            skipped += 1
            _show_skipped(item, as_json)
            continue
        uncovered = (
            None if item.credits <= left else InsufficientCreditsError(item.booking_id, item.credits, left)
        )
        if uncovered is None:
            left -= item.credits
            covered += 1
        else:
            short.append(item.booking_id)
        _show_planned(item, uncovered, as_json)
    summary = (
        f"{plural(covered, 'booking')} would spend {money(balance - left)} of the {money(balance)} credits"
    )
    if short:
        summary += (
            f"; the balance would not cover {plural(len(short), 'booking')}: {' '.join(map(str, short))}"
        )
    if skipped:
        summary += f"; {plural(skipped, 'booking')} would not be rescheduled"
    print(f"{summary}. No reschedule was sent.", file=sys.stderr if as_json else sys.stdout)
    return EXIT_OK


async def _look_at(aw: AdultWorkClient, booking_id: int, *, force: bool) -> MadeBooking | _Skipped:
    """The booking the batch would reschedule, or why it would not. An error that every booking
    would meet (no valid token, the server down) is raised: it ends the dry run."""
    if not force:
        entry = await aw.journal.get(Key(aw.phonechat.api_root, booking_id))
        if (
            entry is not None
            and entry.effective_state is AttemptState.RESCHEDULED
            and entry.new_booking_id is not None
        ):
            return _Skipped(booking_id, AlreadyRescheduledError(booking_id, entry.new_booking_id))
    try:
        booking = await aw.phonechat.made_booking_details(booking_id)
        check_session_passed(booking, datetime.now(UTC), aw.phonechat.server_timezone)
    except (NotFoundError, PermissionDeniedError, PreconditionError) as exc:
        return _Skipped(booking_id, exc)
    return booking


def _show_skipped(item: _Skipped, as_json: bool) -> None:
    if as_json:
        print(
            json_line(
                {"booking_id": item.booking_id, "would_reschedule": False, "error": error_json(item.why)}
            )
        )
    elif isinstance(item.why, AlreadyRescheduledError):
        print(
            f"would not reschedule {item.booking_id}: already rescheduled into booking "
            f"{item.why.new_booking_id} (--force would do it again)"
        )
    else:
        print(f"would not reschedule {item.booking_id}: {error_line(item.why)}")


def _show_planned(booking: MadeBooking, uncovered: InsufficientCreditsError | None, as_json: bool) -> None:
    if as_json:
        line = {
            "booking_id": booking.booking_id,
            "would_reschedule": True,
            "credits": booking.credits,
            "covered": uncovered is None,
            "error": error_json(uncovered) if uncovered is not None else None,
        }
        print(json_line(line))
    else:
        note = "" if uncovered is None else "  (the balance would not cover it)"
        print(f"would reschedule {booking_line(booking)}{note}")
