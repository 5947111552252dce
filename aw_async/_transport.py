"""The transport: sends a request, retrying as the policy allows, through an *exchange*.

An exchange is one try: any ``async`` callable from a :class:`~aw_async._protocol.Request` to a
:class:`~aw_async._protocol.Response` (a :data:`Send`). The client's default is aiohttp
(:class:`aw_async._exchange.AiohttpExchange`: the connection, the timeouts, the body limit and the
mapping of aiohttp's exceptions); a test gives :class:`aw_async.testing.MockTransport` instead
(``AdultWorkClient(..., transport=...)``). An exchange reports a try that got no answer by raising
:class:`ExchangeError`, which says whether the request may have reached the server.

:class:`Transport` owns what happens between tries, with its dependencies injected: the retry
policy, the clock its waits are made on, the account's gate, and an optional pace. Nothing here
reads a module global, so a test records the waits by giving a clock, not by patching one.

Invariants:

- A request is sent again only when :class:`~aw_async._retry.RetryPolicy` says so, and it says so
  for a request that is not idempotent only when that request never left (no connection): never
  after a 429, a 5xx, a timeout or a lost connection.
- A request to the API root waits at the account's gate before each try; a 429 (or a 503 with
  ``Retry-After``) to one closes that gate for the time named, whether or not this request is
  tried again (a POST's 429 is returned at once, and the gate holds back the rest). From the
  account's first 429 on, its requests also keep to the pace the gate learns from its 429s.
- ``asyncio.CancelledError`` is never caught.
- No secret reaches a message or a chain: URLs are shown redacted, and an exchange chains only a
  redacted stand-in of a third-party exception.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from . import _tracing
from ._clock import Clock
from ._gate import Gate, Pacer
from ._protocol import Request, Response, parse_retry_after
from ._redact import RedactedCause
from ._retry import RetryPolicy, SendFailure
from .errors import ClientClosedError, OutcomeUnknownError, TransportError

__all__ = ["ExchangeError", "Send", "Transport"]

log = logging.getLogger("aw_async")

#: Sends a request and gives its response: an exchange (one try), or a transport (with retries).
Send = Callable[[Request], Awaitable[Response]]


class ExchangeError(Exception):
    """A try that got no usable answer, as an exchange reports it.

    Attributes:
        failure: what it means for a retry (None: trying again cannot help).
        description: what went wrong, with no secret in it.
        cause: a redacted stand-in of the original exception, to chain instead of it.
    """

    def __init__(
        self, failure: SendFailure | None, description: str, cause: RedactedCause | None = None
    ) -> None:
        super().__init__(description)
        self.failure = failure
        self.description = description
        self.cause = cause


class Transport:
    """Sends requests through ``exchange`` with retries, the account's gate and an optional pace.

    Args:
        exchange: one try of a request.
        retry: the retry policy.
        clock: what every wait is made on.
        gate: the account's gate.
        gate_root: the URL prefix of the requests that wait at the gate (the API root and a slash:
            a token endpoint elsewhere is another server, with limits of its own).
        pacer: paces every try, when given.
        close_exchange: awaited by :meth:`close` (the exchange was created for this transport).
        connections_in_use: how many connections the exchange holds checked out.
    """

    def __init__(
        self,
        exchange: Send,
        *,
        retry: RetryPolicy,
        clock: Clock,
        gate: Gate | None = None,
        gate_root: str = "",
        pacer: Pacer | None = None,
        close_exchange: Callable[[], Awaitable[None]] | None = None,
        connections_in_use: Callable[[], int] | None = None,
    ) -> None:
        self.exchange = exchange
        self.retry = retry
        self.clock = clock
        self.gate = gate
        self._gate_root = gate_root
        self.pacer = pacer
        self._close_exchange = close_exchange
        self._connections_in_use = connections_in_use
        self._closed = False

    @property
    def connections_in_use(self) -> int:
        """How many connections are checked out right now (0 when nothing is in flight)."""
        return self._connections_in_use() if self._connections_in_use is not None else 0

    async def close(self) -> None:
        """Refuse every later request, and close the exchange if it was created for this transport."""
        self._closed = True
        if self._close_exchange is not None:
            await self._close_exchange()

    async def send(self, request: Request) -> Response:
        """Send ``request``, retrying as the policy allows; the last answer is returned whatever
        its status (the protocol layer turns statuses into errors).

        Raises:
            ClientClosedError: after :meth:`close`; nothing was sent.
            OutcomeUnknownError: a request that is not idempotent may have reached the server and
                no answer came; it was not sent again.
            TransportError: no answer came, and retrying could not help or ran out of tries.
            DecodeError: the answer's body is larger than the limit.
        """
        if self._closed:
            raise ClientClosedError("this client is closed")
        tracer = _tracing.operation_tracer()
        if tracer is None:
            return await self._send(request)
        with _tracing.operation_span(tracer, request) as span:
            response = await self._send(request)
            _tracing.answered(span, response.status)
            return response

    async def _send(self, request: Request) -> Response:
        gate = self.gate if self.gate is not None and request.url.startswith(self._gate_root) else None
        retry = 0
        while True:
            if (gate is not None and (gate.opens_at or gate.pace.rate is not None)) or self.pacer is not None:
                await self._wait_for_turn(gate)
            if request.not_after is not None and self.clock.now() > request.not_after:
                raise TransportError(  # its attempt's time to leave is over: it never left
                    f"{request.method} {request.display_url} was not sent: it could not leave in time",
                    method=request.method,
                    url=request.display_url,
                    attempts=retry,
                )
            started = time.perf_counter()
            failed: ExchangeError | None = None
            try:
                response = await self.exchange(request)
            except ExchangeError as exc:
                failed = exc
            if failed is not None:
                wait = None
                if failed.failure is not None:
                    wait = self.retry.after_failure(
                        failed.failure, idempotent=request.idempotent, retry=retry
                    )
                if wait is None:
                    raise _give_up(request, failed, attempts=retry + 1) from failed.cause
                log.warning(
                    "%s %s failed (%s); retry %d in %.2f s",
                    request.method,
                    request.display_url,
                    failed.description,
                    retry + 1,
                    wait,
                )
                del failed
            else:
                status = response.status
                if gate is not None and gate.pace.rate is None and status != 429:
                    gate.pace.answered()  # for the pace's first estimate, should a 429 come
                if 200 <= status < 300 and not log.isEnabledFor(logging.DEBUG):
                    return response  # the common case: nothing to log, nothing to retry
                if log.isEnabledFor(logging.DEBUG):  # display_url is not free: build it only if shown
                    log.debug(
                        "%s %s -> %d in %.3f s (try %d)",
                        request.method,
                        request.display_url,
                        status,
                        time.perf_counter() - started,
                        retry + 1,
                    )
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if status == 429 or status >= 500
                    else None
                )
                closed = gate is not None and self._close_gate(gate, status, retry_after, retry)
                wait = self.retry.after_status(
                    status, idempotent=request.idempotent, retry=retry, retry_after=retry_after
                )
                if wait is None:
                    return response
                log.warning(
                    "%s %s answered %d; retry %d in %.2f s",
                    request.method,
                    request.display_url,
                    status,
                    retry + 1,
                    wait,
                )
                if closed:
                    wait = 0.0  # the gate holds this request back with the rest of the account's
            if wait > 0:
                await self.clock.sleep(wait)
            retry += 1

    async def _wait_for_turn(self, gate: Gate | None) -> None:
        """Wait at the gate, then for a slot of the account's learnt pace and of the client's own;
        at the gate again if it closed meanwhile."""
        while True:
            waited = False
            if gate is not None:
                if gate.opens_at:
                    await gate.wait()
                if gate.pace.rate is not None:
                    waited = await gate.pace.take()
            if self.pacer is not None:
                waited = await self.pacer.take() or waited
            if not waited or gate is None or not gate.is_closed():
                return

    def _close_gate(self, gate: Gate, status: int, retry_after: float | None, retry: int) -> bool:
        """Close the gate after a 429 or a 503 with ``Retry-After``; True if it was closed.

        A ``Retry-After`` beyond the policy's ``max_retry_after`` closes nothing: it is not waited
        out here, and the request that got it reports it (the others meet their own answers)."""
        if status != 429 and not (status == 503 and retry_after is not None):
            return False
        pause = retry_after if retry_after is not None else self.retry.backoff(retry)
        if pause > self.retry.max_retry_after:
            return False
        gate.close(pause)
        log.warning("the account's gate is closed for %.2f s after a %d", pause, status)
        return True


def _give_up(request: Request, failed: ExchangeError, *, attempts: int) -> TransportError:
    what = failed.description
    where = f"{request.method} {request.display_url}"
    tries = f" after {attempts} tries" if attempts > 1 else ""
    if failed.failure is SendFailure.OUTCOME_UNKNOWN and not request.idempotent:
        return OutcomeUnknownError(
            f"{where} may have reached the server, but no answer came ({what}); it was not "
            "sent again: check its effect before retrying",
            method=request.method,
            url=request.display_url,
            attempts=attempts,
        )
    if failed.failure is SendFailure.NOT_SENT:
        message = f"{where} could not be sent{tries}: {what}"
    elif failed.failure is None:
        message = f"{where} failed: {what}"
    else:
        message = f"{where} got no answer{tries}: {what}"
    return TransportError(message, method=request.method, url=request.display_url, attempts=attempts)
