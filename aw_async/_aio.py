"""Running coroutines side by side without leaving any behind."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

__all__ = ["gather_or_cancel"]


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
