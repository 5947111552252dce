"""``aw-async journal list`` and ``aw-async journal resolve``: what the journal holds for an API root,
and the user's own answer for an outcome nothing else can decide."""

from __future__ import annotations

from .._client import AdultWorkClient
from ..journal import AttemptState, JournalEntry
from ._exit import EXIT_OK
from ._format import json_line

__all__ = ["list_journal", "resolve_in_journal"]


def _entry_json(entry: JournalEntry) -> dict[str, object]:
    state = entry.effective_state
    return {
        "booking_id": entry.booking_id,
        "state": state.value,
        "attempt": entry.attempt,
        "started_at": entry.started_at.isoformat() if entry.readable else None,
        "updated_at": entry.updated_at.isoformat() if entry.readable else None,
        "new_booking_id": entry.new_booking_id,
        "decided_by": entry.decided_by.value if entry.decided_by else None,
        "owner": entry.owner,
        "retry_after": round(entry.retry_after, 1) if state is AttemptState.UNKNOWN else None,
        "readable": entry.readable,
    }


def _entry_line(entry: JournalEntry) -> str:
    state = entry.effective_state
    if not entry.readable:
        return f"{entry.booking_id}: unreadable (written by another version): resolve it"
    when = entry.started_at.isoformat(sep=" ", timespec="seconds")
    if state is AttemptState.RESCHEDULED:
        what = f"rescheduled into {entry.new_booking_id}"
    elif state is AttemptState.REFUSED:
        what = "not rescheduled"
    elif state is AttemptState.IN_FLIGHT:
        what = f"in flight (owner {entry.owner})"
    elif entry.settled:
        what = "UNKNOWN: reconcile it, or resolve it yourself"
    else:
        what = f"UNKNOWN: a reconciliation can tell in {entry.retry_after:.0f} s"
    by = f" ({entry.decided_by.value})" if entry.decided_by and state is not AttemptState.UNKNOWN else ""
    return f"{entry.booking_id}: {what}{by}; attempt {entry.attempt} at {when}"


async def list_journal(aw: AdultWorkClient, *, state: AttemptState | None, as_json: bool) -> int:
    """Print the journal's entries for the client's API root (one state, or all)."""
    root = aw.phonechat.api_root
    entries = await aw.journal.entries(root, states=[state] if state is not None else None)
    for entry in entries:
        print(json_line(_entry_json(entry)) if as_json else _entry_line(entry))
    if not as_json:
        counted = "1 entry" if len(entries) == 1 else f"{len(entries)} entries"
        print(f"{counted} for {root} in {aw.journal!r}")
    return EXIT_OK


async def resolve_in_journal(aw: AdultWorkClient, booking_id: int, *, rescheduled_into: int | None) -> int:
    """Record the user's answer for ``booking_id``."""
    await aw.phonechat.resolve(booking_id, rescheduled_into=rescheduled_into)
    said = f"rescheduled into {rescheduled_into}" if rescheduled_into is not None else "not rescheduled"
    print(f"{booking_id}: recorded as {said}")
    return EXIT_OK
