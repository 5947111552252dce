"""Coroutines side by side without leaving any behind, and one flight for concurrent callers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import attrs

__all__ = ["SingleFlight", "gather_or_cancel"]

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


async def gather_or_cancel(*awaitables: Awaitable[Any]) -> list[Any]:
    """``asyncio.gather`` that, when one fails or the caller is cancelled, cancels the others and
    waits for them before re-raising.

    Plain ``gather`` leaves the others running (and their errors unretrieved); ``TaskGroup`` wraps
    the error in an ``ExceptionGroup``. This re-raises the first error itself.
    """
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        return await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


@attrs.define
class _Flight:
    """One key's work under way."""

    task: asyncio.Task[Any] | None = None
    """A detached flight's own task; None for a flight run by the caller that started it."""
    landed: asyncio.Future[Any] | None = None
    """What waiters wait on: the task itself, or a future the runner resolves (made when the first
    waiter comes)."""
    waiters: int = 0


#: What a flight's waiters are told when its runner was cancelled: run the work themselves.
_RUN_AGAIN = object()


class SingleFlight(Generic[K]):
    """Concurrent calls for one key share one run of the work: the first caller's; the others wait
    for it and get its result or its error.

    A detached flight (a single call's) runs in a task of its own: a caller that is cancelled only
    stops waiting, and the flight is cancelled with its last caller (after its own bookkeeping). A
    flight that is not detached (a batch's, which pays for every booking) runs in the task of the
    caller that started it: when that caller is cancelled, so is the work, and a waiter runs the work
    again itself (which then finds what the cancelled one recorded).
    """

    def __init__(self) -> None:
        self._flights: dict[K, _Flight] = {}

    def __len__(self) -> int:
        return len(self._flights)

    async def run(self, key: K, work: Callable[[], Awaitable[T]], *, detached: bool = True) -> T:
        """Run ``work`` for ``key`` unless a flight for it is under way; then wait for that one."""
        while (flight := self._flights.get(key)) is not None:
            outcome = await self._wait_for(flight, joined=True)
            if outcome is not _RUN_AGAIN:
                return outcome  # type: ignore[no-any-return]
        if detached:
            task = asyncio.ensure_future(work())
            own = self._flights[key] = _Flight(task=task, landed=task)
            task.add_done_callback(lambda _: self._land(key, own))
            return await self._wait_for(own)  # type: ignore[no-any-return]
        flight = self._flights[key] = _Flight()
        try:
            result = await work()
        except asyncio.CancelledError:
            self._land(key, flight, _RUN_AGAIN)
            raise
        except BaseException as exc:
            self._land(key, flight, error=exc)
            raise
        self._land(key, flight, result)
        return result

    @staticmethod
    async def _wait_for(flight: _Flight, *, joined: bool = False) -> Any:
        if flight.landed is None:
            flight.landed = asyncio.get_running_loop().create_future()
        landed = flight.landed
        flight.waiters += 1
        try:
            await asyncio.wait((landed,))  # not `await landed`: cancelling a waiter must not cancel it
        except asyncio.CancelledError:
            task = flight.task
            if task is not None and flight.waiters == 1 and not task.done():
                task.cancel()  # the last caller of a detached flight: the flight goes with it, and
                await asyncio.wait((task,))  # its bookkeeping (an outcome unknown) is done first
            raise
        finally:
            flight.waiters -= 1
        if joined and landed.cancelled():
            # Cancelled with its last caller while this one was joining it: this caller was not
            # cancelled, so it runs the work itself rather than inherit someone else's cancellation.
            return _RUN_AGAIN
        return landed.result()

    def _land(self, key: K, flight: _Flight, result: Any = None, error: BaseException | None = None) -> None:
        """The flight is over: nobody joins it any more, and its waiters are told."""
        if self._flights.get(key) is flight:
            del self._flights[key]
        landed = flight.landed
        if flight.task is not None:  # the task is the future its waiters wait on
            if not flight.task.cancelled():
                flight.task.exception()  # marked seen: its waiters may all have gone
            return
        if landed is None:
            return  # nobody came to wait
        if error is None:
            landed.set_result(result)
        else:
            landed.set_exception(error)
            landed.exception()  # marked seen: its waiters may all have gone
