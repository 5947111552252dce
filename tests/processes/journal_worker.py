"""A batch in a process of its own, for the tests that share a journal between processes or kill one
mid-batch: ``python -m tests.processes.journal_worker BASE_URL TOKEN JOURNAL CONCURRENCY ID...``. Prints one
line per outcome as it completes: ``<id> ok <new id>`` or ``<id> <error type>``. The client's
timeout (and so how long it waits for another process's attempt) is ``$WORKER_TIMEOUT``, 30 s by
default."""

from __future__ import annotations

import asyncio
import os
import sys

from aw_async import AdultWorkClient, RescheduleOutcome


def show(outcome: RescheduleOutcome) -> None:
    if outcome.ok and outcome.booking is not None:
        print(f"{outcome.booking_id} ok {outcome.booking.booking_id}", flush=True)
    else:
        print(f"{outcome.booking_id} {type(outcome.error).__name__}", flush=True)


async def main(base_url: str, token: str, journal: str, concurrency: int, ids: list[int]) -> None:
    timeout = float(os.environ.get("WORKER_TIMEOUT", "30"))
    async with AdultWorkClient(token, base_url=base_url, journal=journal, timeout=timeout) as aw:
        await aw.phonechat.reschedule_made_bookings(ids, concurrency=concurrency, on_progress=show)


if __name__ == "__main__":
    base_url, token, journal, concurrency, *ids = sys.argv[1:]
    asyncio.run(main(base_url, token, journal, int(concurrency), [int(i) for i in ids]))
