"""``MockTransport``: one try of a request answered by a function, in memory."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from .._exchange import exchange_error
from .._protocol import Request, Response
from .._transport import ExchangeError
from ..errors import AdultWorkError

__all__ = ["Handler", "MockTransport"]

#: Answers a request: a :class:`Response`, or one to await.
Handler = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """An exchange (``AdultWorkClient(..., transport=...)``) that calls ``handler`` for each try.

    The handler returns the answer, or raises to make the try fail as the network would: aiohttp's
    own exceptions (``aiohttp.ServerDisconnectedError()``, a ``ClientConnectorError``) and
    ``OSError``/``TimeoutError`` are mapped exactly as the aiohttp transport maps them (a refused
    connection was never sent; a reset may have been), and an :class:`ExchangeError` says so
    directly. Every request is kept in :attr:`requests`, in order.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []

    def __repr__(self) -> str:
        return f"MockTransport({getattr(self.handler, '__qualname__', self.handler)!r})"

    async def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        failed: Exception | None = None
        try:
            answer = self.handler(request)
            return await answer if inspect.isawaitable(answer) else answer
        except (ExchangeError, AdultWorkError):
            raise
        except Exception as exc:  # what the network would have raised; CancelledError passes
            failed = exc
        raise exchange_error(failed, request)
