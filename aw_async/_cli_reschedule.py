"""``aw-async reschedule`` and ``aw-async reconcile``: the journal on the command line.

- Each outcome is printed the moment it completes (one JSON object a line with ``--json``), so an
  interrupted run has already shown everything that happened.
- On Ctrl-C or SIGTERM nothing more is started; what is in flight gets a few seconds to finish,
  then is cancelled and reported as unknown (the journal records it so, and the next run reconciles
  it). Every booking that was started is reported, and the exit code is 130 (SIGINT) or 143
  (SIGTERM). A second signal cancels at once.
- ``--passed-since 24h --dry-run`` shows the candidates and what they would spend against the
  balance, and sends nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from ._batch import RescheduleOutcome
from ._cli_format import (
    booking_line,
    error_json,
    money,
    outcome_json,
    outcome_line,
    plural,
    settled,
    summary_line,
)
from ._client import AdultWorkClient
from .errors import AdultWorkError, NotStartedError, OutcomeUnknownError

__all__ = ["GRACE_SECONDS", "default_journal_path", "dry_run", "reconcile", "reschedule"]

EXIT_OK, EXIT_FAILED = 0, 1
#: How long bookings in flight may finish after the first Ctrl-C or SIGTERM.
GRACE_SECONDS = 3.0
_EXIT_ON = {signal.SIGINT: 130, signal.SIGTERM: 143}


def default_journal_path() -> Path:
    """Where ``reschedule`` keeps its journal unless told otherwise: the user's state directory
    (``$XDG_STATE_HOME``, else ``~/.local/state``; ``%LOCALAPPDATA%`` on Windows)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "aw-async" / "journal.sqlite3"


async def reschedule(aw: AdultWorkClient, ids: list[int], args: argparse.Namespace) -> int:
    """Run the batch, printing each outcome as it completes; stop gently on a signal."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    reported: list[RescheduleOutcome] = []

    progress = _Progress(sys.stderr, len(dict.fromkeys(ids))) if sys.stderr.isatty() else None

    def show(outcome: RescheduleOutcome) -> None:
        reported.append(outcome)
        if isinstance(outcome.error, NotStartedError):
            return  # never begun: counted in the summary, not a line each
        if progress is not None:
            progress.clear()
        print(json.dumps(outcome_json(outcome), ensure_ascii=False) if args.json else outcome_line(outcome))
        sys.stdout.flush()
        if progress is not None:
            progress.update(outcome)

    batch = asyncio.ensure_future(
        aw.phonechat.reschedule_made_bookings(
            ids,
            concurrency=args.concurrency,
            check_preconditions=not args.no_check,
            on_progress=show,
            force=args.force,
            stop=stop,
        )
    )

    def on_signal(received_signal: signal.Signals) -> None:
        received.append(received_signal)
        if len(received) == 1:  # send nothing more; let what is in flight finish, briefly
            print(
                f"{received_signal.name}: starting nothing more; waiting for what is in flight",
                file=sys.stderr,
            )
            stop.set()
            loop.call_later(GRACE_SECONDS, batch.cancel)
        else:
            batch.cancel()

    for handled in _EXIT_ON:
        loop.add_signal_handler(handled, on_signal, handled)
    try:
        await batch
    except asyncio.CancelledError:
        if not received:
            raise
    finally:
        for handled in _EXIT_ON:
            loop.remove_signal_handler(handled)
    if progress is not None:
        progress.finish()
    started = [o for o in reported if not isinstance(o.error, NotStartedError)]
    summary = summary_line(started)
    never = len(dict.fromkeys(ids)) - len(started)
    if never:
        summary += f"; {plural(never, 'booking')} not started"
    print(summary, file=sys.stderr if args.json else sys.stdout)
    if received:
        return _EXIT_ON[received[0]]
    return (
        EXIT_OK if all(settled(o) for o in reported) else EXIT_FAILED
    )  # a re-run that finds it done is fine


async def dry_run(aw: AdultWorkClient, candidates: list[int], args: argparse.Namespace) -> int:
    """Show what ``reschedule --passed-since`` would do, and what it would spend; send nothing."""
    found = [b async for b in aw.phonechat.passed_bookings(since=args.passed_since)]
    extra = set(candidates) - {b.booking_id for b in found}
    for booking_id in sorted(extra):
        found.append(await aw.phonechat.made_booking_details(booking_id))
    balance = await aw.credit_history.get_current_credit_balance()
    total = sum((b.credits for b in found), Decimal(0))
    for booking in found:
        print(
            json.dumps({"booking_id": booking.booking_id, "credits": money(booking.credits)})
            if args.json
            else f"would reschedule {booking_line(booking)}"
        )
    verdict = "enough" if total <= balance else f"short by {money(total - balance)}"
    print(
        f"{plural(len(found), 'booking')} would spend {money(total)} credits; the balance is "
        f"{money(balance)} ({verdict}). Nothing was sent.",
        file=sys.stderr if args.json else sys.stdout,
    )
    return EXIT_OK


async def reconcile(aw: AdultWorkClient, ids: list[int], args: argparse.Namespace) -> int:
    """For each id, learn from MadeBookings whether its reschedule happened; update the journal."""
    status = EXIT_OK
    for booking_id in dict.fromkeys(ids):
        try:
            found = await aw.phonechat.reconcile(booking_id, since=args.since)
        except AdultWorkError as exc:
            status = EXIT_FAILED
            candidates = exc.candidates if isinstance(exc, OutcomeUnknownError) else ()
            if args.json:
                print(
                    json.dumps({"booking_id": booking_id, "error": error_json(exc), "candidates": candidates})
                )
            else:
                print(f"{booking_id}: UNRESOLVED: {exc}")
            continue
        if args.json:
            print(
                json.dumps(
                    {"booking_id": booking_id, "rescheduled_into": found.booking_id if found else None}
                )
            )
        elif found is None:
            print(f"{booking_id}: not rescheduled")
        else:
            print(f"{booking_id}: rescheduled into {booking_line(found)}")
    return status


class _Progress:
    """One line on a terminal (stderr), rewritten as outcomes arrive."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.done, self.failed = stream, total, 0, 0

    def clear(self) -> None:
        """Make room for a line of output."""
        if self.done:
            self.stream.write("\r\x1b[K")

    def update(self, outcome: RescheduleOutcome) -> None:
        self.done += 1
        self.failed += not outcome.ok
        self.stream.write(f"\r{self.done}/{self.total} done, {self.failed} failed")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
