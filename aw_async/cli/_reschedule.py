"""``aw-async reschedule`` and ``aw-async reconcile``: the journal on the command line.

- Each outcome is printed the moment it completes (one JSON object a line with ``--json``), so an
  interrupted run has already shown everything that happened.
- On Ctrl-C or SIGTERM nothing more is started; what is in flight gets a few seconds to finish,
  then is cancelled and reported as unknown (the journal records it so, and the next run reconciles
  it). Every booking that was started is reported, and the exit code is 130 (SIGINT) or 143
  (SIGTERM). A second signal cancels at once.
- The bookings a batch never started (it was stopped, or could not go on) are counted once per
  cause in the summary, not a line each; with ``--json`` each still gets its object (a program
  reading the output learns every booking's fate), and the summary goes to stderr.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import datetime
from typing import TextIO

from .._client import AdultWorkClient
from ..errors import (
    AdultWorkError,
    InFlightElsewhereError,
    InvalidRequestError,
    NotStartedError,
    OutcomeUnknownError,
)
from ..models import MadeBooking
from ..phonechat import RescheduleOutcome, Stage
from ._exit import EXIT_FAILED, EXIT_OK
from ._format import (
    Rerun,
    booking_line,
    is_done,
    json_line,
    message,
    outcome_json,
    outcome_line,
    plural,
    summary_line,
)

__all__ = ["GRACE_SECONDS", "reconcile", "reschedule"]

#: How long bookings in flight may finish after the first Ctrl-C or SIGTERM.
GRACE_SECONDS = 3.0
_EXIT_ON = {signal.SIGINT: 130, signal.SIGTERM: 143}


async def reschedule(
    aw: AdultWorkClient,
    bookings: list[int | MadeBooking],
    *,
    concurrency: int,
    check_preconditions: bool,
    force: bool,
    as_json: bool,
    rerun: Rerun,
) -> int:
    """Run the batch, printing each outcome as it completes; stop gently on a signal. ``rerun``:
    what running it again would do (the summary's advice for bookings that may have gone through)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[signal.Signals] = []
    reported: list[RescheduleOutcome] = []
    distinct = len({b.booking_id if isinstance(b, MadeBooking) else b for b in bookings})
    progress = _Progress(sys.stderr, distinct) if sys.stderr.isatty() else None

    def show(outcome: RescheduleOutcome) -> None:
        reported.append(outcome)
        if progress is not None:
            progress.clear()
        if as_json:
            print(json_line(outcome_json(outcome, rerun=rerun)), flush=True)
        elif not isinstance(outcome.error, NotStartedError):  # never begun: counted in the summary
            print(outcome_line(outcome, rerun=rerun), flush=True)
        if progress is not None:
            progress.update(outcome)

    batch = asyncio.ensure_future(
        aw.phonechat.reschedule_made_bookings(
            bookings,
            concurrency=concurrency,
            check_preconditions=check_preconditions,
            on_progress=show,
            force=force,
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
    summary = summary_line(reported, rerun=rerun)
    never = distinct - len(reported)
    if never:
        summary += f"; {plural(never, 'booking')} not started"
    print(summary, file=sys.stderr if as_json else sys.stdout)
    if received:
        return _EXIT_ON[received[0]]
    return (
        EXIT_OK if all(is_done(o) for o in reported) else EXIT_FAILED
    )  # a re-run that finds it done is fine


async def reconcile(aw: AdultWorkClient, ids: list[int], *, since: datetime | None, as_json: bool) -> int:
    """For each id, learn from MadeBookings whether its reschedule happened; record what is proven.
    Its lines have the shape of ``reschedule``'s."""
    status = EXIT_OK
    for booking_id in dict.fromkeys(ids):
        try:
            found = await aw.phonechat.reconcile(booking_id, since=since)
        except AdultWorkError as exc:
            status = EXIT_FAILED
            if isinstance(exc, InvalidRequestError) and exc.field == "since":  # worded for this CLI
                exc = InvalidRequestError(
                    "--since", f"the journal has no attempt of booking {booking_id}: say when it was made"
                )
            may = isinstance(exc, OutcomeUnknownError | InFlightElsewhereError)
            outcome = RescheduleOutcome(booking_id, error=exc, stage=Stage.JOURNAL, may_have_happened=may)
            print(
                json_line(outcome_json(outcome)) if as_json else f"{booking_id}: UNRESOLVED: {message(exc)}"
            )
            continue
        if as_json:
            line = outcome_json(RescheduleOutcome(booking_id, booking=found))
            line["rescheduled"] = found is not None
            print(json_line(line))
        elif found is None:
            print(f"{booking_id}: not rescheduled")
        else:
            print(f"{booking_id}: rescheduled into {booking_line(found)}")
    return status


class _Progress:
    """One line on a terminal (stderr), rewritten as outcomes arrive: distinct bookings."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream, self.total, self.done, self.failed = stream, total, 0, 0

    def clear(self) -> None:
        """Make room for a line of output."""
        if self.done:
            self.stream.write("\r\x1b[K")

    def update(self, outcome: RescheduleOutcome) -> None:
        self.done += 1
        self.failed += not is_done(outcome)
        self.stream.write(f"\r{self.done}/{self.total} done, {self.failed} failed")
        self.stream.flush()

    def finish(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
