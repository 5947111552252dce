"""Load and cancellation, through the sandbox over real sockets."""

from __future__ import annotations

import asyncio
import tracemalloc
from decimal import Decimal

import pytest

from aw_async import AdultWorkClient, RescheduleOutcome
from aw_async.errors import AdultWorkError, OutcomeUnknownError
from aw_async.sandbox import SandboxServer
from benchmarks.e2e import peak_rss_mib

from ..scripted import past_booking

TOKEN = "reliability-token"
USER = 9


def client_tasks() -> list[asyncio.Task[object]]:
    """Tasks running aw_async's client code (the sandbox's own handlers share this loop)."""
    tasks = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code else ""
        if task is not asyncio.current_task() and "aw_async" in filename and "sandbox" not in filename:
            tasks.append(task)
    return tasks


@pytest.mark.slow
async def test_ten_thousand_reschedules_at_concurrency_one_hundred(
    capsys: pytest.CaptureFixture[str], record_property: object
) -> None:
    count = 10_000
    credits = [Decimal(f"{1 + n % 7}.{n % 100:02d}") for n in range(count)]
    async with SandboxServer() as sandbox:
        sandbox.add_token(TOKEN, user_id=USER)
        for booking_id, cost in enumerate(credits, start=1):
            sandbox.add_booking(past_booking(booking_id, credits=str(cost)), client_user_id=USER)
        start_balance = sum(credits) + Decimal("0.01")
        sandbox.set_balance(USER, start_balance)
        tracemalloc.start()
        async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings(range(1, count + 1), concurrency=100)
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert [o.booking_id for o in outcomes] == list(range(1, count + 1))  # every one accounted for
        failed = [o for o in outcomes if not o.ok]
        assert failed == []
        assert all(len(sandbox.rescheduled(booking_id)) == 1 for booking_id in range(1, count + 1))
        assert sandbox.get_balance(USER) == Decimal("0.01")  # reduced by exactly the sum
        assert sum(o.booking.credits for o in outcomes if o.booking) == sum(credits)
        assert len([r for r in sandbox.requests if r.method == "POST"]) == count
        assert len(sandbox.requests) == 2 * count + 1
    with capsys.disabled():
        print(
            f"\n10,000 reschedules: peak Python memory {traced_peak / 2**20:.1f} MiB traced "
            f"(this pytest process's peak RSS, every test so far included: {peak_rss_mib():.0f} MiB)"
        )


async def test_a_batch_cancelled_mid_flight() -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(TOKEN, user_id=USER)
        sandbox.set_balance(USER, Decimal(1000))
        for booking_id in range(1, 41):
            sandbox.add_booking(past_booking(booking_id, credits="1"), client_user_id=USER)
        # Every POST is processed, then its answer is held back: cancelling leaves them unknown.
        sandbox.faults.add("delay", method="POST", when="after", seconds=30, times=1000)
        reported: list[RescheduleOutcome] = []
        async with AdultWorkClient(TOKEN, base_url=sandbox.url) as aw:
            batch = asyncio.create_task(
                aw.phonechat.reschedule_made_bookings(
                    range(1, 41), concurrency=5, on_progress=reported.append
                )
            )
            while len([r for r in sandbox.requests if r.method == "POST"]) < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.01)  # the sandbox has no event to wait on; poll its log
            batch.cancel()
            with pytest.raises(asyncio.CancelledError):
                await batch
            posted = {int(b) for b in sandbox.state.rescheduled}
            unknown = {o.booking_id for o in reported if isinstance(o.error, OutcomeUnknownError)}
            assert unknown == posted  # each POST whose fate the client cannot know is reported as such
            assert all(isinstance(o.error, AdultWorkError) for o in reported)
            # The client is still usable, and nothing of the batch is left running.
            sandbox.faults.clear()
            assert await aw.credit_history.get_current_credit_balance() == Decimal(1000 - len(posted))
            assert client_tasks() == []
            assert aw.connections_in_use == 0
