"""Single-flight: concurrent callers of one key share one run of the work (the guard holds one per
journal, so clients sharing a journal share their flights)."""

from __future__ import annotations

import asyncio

import pytest

from aw_async._tasks import SingleFlight


async def test_a_batchs_flight_runs_in_its_first_callers_task() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs, release = [], asyncio.Event()
    tasks_before = len(asyncio.all_tasks())

    async def work() -> int:
        runs.append(asyncio.current_task())
        assert len(asyncio.all_tasks()) == tasks_before + 2  # the callers' own tasks, no more
        await release.wait()
        return 7

    callers = [asyncio.ensure_future(flights.run(1, work, detached=False)) for _ in range(2)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*callers) == [7, 7]
    assert runs == [callers[0]]  # run by its first caller, in that caller's task
    assert len(flights) == 0


@pytest.mark.parametrize("detached", [True, False])
async def test_a_flights_error_reaches_every_waiter(detached: bool) -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0)
        raise LookupError("no such booking")

    calls = (flights.run(1, work, detached=detached) for _ in range(3))
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [type(r) for r in results] == [LookupError] * 3
    assert len({id(r) for r in results}) == 1  # one flight, one error


@pytest.mark.parametrize("detached", [True, False])
async def test_a_cancelled_waiter_stops_waiting_and_the_flight_goes_on(detached: bool) -> None:
    flights: SingleFlight[int] = SingleFlight()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 7

    runner = asyncio.ensure_future(flights.run(1, work, detached=detached))
    waiters = [asyncio.ensure_future(flights.run(1, work, detached=detached)) for _ in range(2)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.sleep(0)
    release.set()
    assert await runner == 7
    assert await waiters[1] == 7
    assert waiters[0].cancelled()


async def test_a_single_calls_flight_outlives_its_first_caller_while_another_waits() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0

    async def work() -> int:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.01)
        return 7

    first = asyncio.ensure_future(flights.run(1, work))
    second = asyncio.ensure_future(flights.run(1, work))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 7
    assert first.cancelled()
    assert runs == 1  # one flight: the cancelled caller only stopped waiting


async def test_a_single_calls_flight_is_cancelled_with_its_last_caller_after_its_bookkeeping() -> None:
    flights: SingleFlight[int] = SingleFlight()
    done: list[str] = []

    async def work() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # the bookkeeping of a cancelled attempt, which awaits
            done.append("recorded")
            raise
        return 7

    caller = asyncio.ensure_future(flights.run(1, work))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert done == ["recorded"]  # finished before the caller's cancellation propagated
    assert len(flights) == 0


async def test_when_a_batchs_runner_is_cancelled_a_waiter_runs_the_work_again() -> None:
    # The runner's work is cancelled with it (the guard then records what it must: a claim given
    # back, or an outcome unknown); the next waiter runs the work itself, and so finds that record.
    flights: SingleFlight[int] = SingleFlight()
    started: list[asyncio.Task[object] | None] = []

    async def work() -> int:
        started.append(asyncio.current_task())
        await asyncio.sleep(0.01 if len(started) == 1 else 0)
        return len(started)

    runner = asyncio.ensure_future(flights.run(1, work, detached=False))
    waiters = [asyncio.ensure_future(flights.run(1, work, detached=False)) for _ in range(2)]
    await asyncio.sleep(0)
    runner.cancel()
    assert await asyncio.gather(*waiters) == [2, 2]  # one new run, shared by both waiters
    assert runner.cancelled()
    assert started == [runner, waiters[0]]


async def test_a_caller_that_joins_a_flight_being_cancelled_with_its_last_caller_runs_the_work_itself() -> (
    None
):
    # A checked reschedule whose details read failed cancels its wait on the shared balance read,
    # its only waiter: the read is cancelled, and takes a few turns to end. A second reschedule,
    # never cancelled, joins it meanwhile: it gets a balance, never the other's CancelledError.
    flights: SingleFlight[None] = SingleFlight()
    runs = 0

    async def read_balance() -> int:
        nonlocal runs
        runs += 1
        try:
            await asyncio.sleep(0.05)
            return 100
        except asyncio.CancelledError:
            await asyncio.sleep(0.01)  # its clean-up takes a few turns of the loop
            raise

    first = asyncio.ensure_future(flights.run(None, read_balance))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)  # the first caller waits for the flight's clean-up
    second = asyncio.ensure_future(flights.run(None, read_balance))
    assert await second == 100
    assert first.cancelled()
    assert runs == 2  # the second ran the work again, itself
    assert len(flights) == 0
