"""The transport: the only module that imports aiohttp's client.

It owns the session, the timeouts, the retry loop, and the one mapping of aiohttp's exceptions
(and of anything else that goes wrong while a request is exchanged) to ours (httpx's
``_transports/default.py``).

A borrowed ``aiohttp.ClientSession`` lends its *connection pool*, never its state: requests go
through a session of the transport's own that shares the borrowed session's connector (and its
``trust_env`` and trace configs) but has no cookie jar, no middlewares, no default headers and no
``raise_for_status``. So a cookie one user's answer sets is never sent with another user's request,
and no middleware of the application's can send a POST a second time.

Invariants:

- A request is sent again only when :class:`~aw_async._retry.RetryPolicy` says so, and it says so
  for a request that is not idempotent only when that request never left (no connection): never
  after a 429, a 5xx, a timeout or a lost connection. aiohttp's own silent retry on a dead
  keep-alive connection covers idempotent methods only, so it never re-sends a POST either.
- ``asyncio.CancelledError`` is never caught: only ``Exception`` subclasses are mapped, and the
  response is read inside ``async with``, which releases the connection however the block ends.
- No secret reaches a message or a chain: URLs are shown redacted, and a third-party exception is
  never chained as it is (aiohttp's carry the request's headers): a redacted stand-in is.
- A body is limited while it is read, counted after decompression: a small gzip body cannot
  inflate past the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from ._clock import elapsed
from ._protocol import Request, Response, parse_retry_after
from ._redact import redact, stand_in
from ._retry import Failure, RetryPolicy
from .codecs import DEFAULT_MAX_BODY_BYTES
from .errors import AdultWorkError, ClientClosedError, DecodeError, OutcomeUnknownError, TransportError

__all__ = ["Send", "Transport"]

log = logging.getLogger("aw_async")

#: Sends a request and gives its response: what the token providers and the API pipeline call.
Send = Callable[[Request], Awaitable[Response]]

# Module-level so that the tests can record the waits instead of waiting them.
_sleep = asyncio.sleep

_CHUNK = 64 * 1024


def _classify(exc: Exception) -> Failure | None:
    """What an aiohttp failure means for a retry; None when trying again cannot help."""
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return None  # a certificate that does not verify will not verify next time either
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return Failure.NOT_SENT  # no connection was ever made
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None
    # Read timeouts, the whole-request timeout, a reset, a disconnect, a truncated body, a status
    # line or header aiohttp cannot parse, and anything unforeseen while the answer was read (a
    # decompressor's error): the request was (or may have been) written, and no usable answer came.
    return Failure.OUTCOME_UNKNOWN


class Transport:
    """Sends requests over aiohttp with timeouts and retries.

    Args:
        session: a session to borrow (never closed here); None to create one on first use.
        timeout: seconds one try may take, from connecting to the last byte of the body.
        retry: the retry policy.
        max_body_bytes: a larger body is refused while it is read.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None,
        timeout: float,
        retry: RetryPolicy,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._borrowed = session
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self.retry = retry
        self._max_body_bytes = max_body_bytes
        self._closed = False
        self._open_responses = 0

    @property
    def connections_in_use(self) -> int:
        """How many connections of the pool are checked out right now (0 when nothing is in flight).

        aiohttp keeps no public count, so this reads its connector's set of acquired connections,
        here and nowhere else; were that ever gone, the count of responses this transport holds open
        is given instead."""
        if self._session is None or self._session.connector is None:
            return 0
        acquired = getattr(self._session.connector, "_acquired", None)
        return len(acquired) if acquired is not None else self._open_responses

    @property
    def owns_session(self) -> bool:
        """Whether the connection pool was created here (and is closed by :meth:`close`)."""
        return self._borrowed is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError("this client is closed")
        borrowed = self._borrowed
        if borrowed is not None and borrowed.closed:  # its connector is gone: never make a new one
            raise TransportError("the aiohttp.ClientSession given to the client is closed")
        if self._session is None:
            # No cookie jar: the API authenticates with bearer tokens, and a jar shared between
            # users would send one user's cookies with another's requests. Decompression needs no
            # setting: aiohttp inflates in bounded steps, and _read_body counts what they give.
            if borrowed is None:
                connector = aiohttp.TCPConnector(limit=100, ttl_dns_cache=300)
                self._session = aiohttp.ClientSession(
                    connector=connector, timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
                )
            else:
                self._session = aiohttp.ClientSession(
                    connector=borrowed.connector,
                    connector_owner=False,  # the pool stays the application's
                    timeout=self._timeout,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trust_env=borrowed.trust_env,
                    trace_configs=list(borrowed.trace_configs) or None,
                )
        return self._session

    async def close(self) -> None:
        """Close the transport's session; a borrowed session's connection pool is left open."""
        self._closed = True
        if self._session is not None:
            await self._session.close()  # closes the connector only when it was created here
        self._session = None

    async def send(self, request: Request) -> Response:
        """Send ``request``, retrying as the policy allows; the last answer is returned whatever
        its status (the protocol layer turns statuses into errors).

        Raises:
            OutcomeUnknownError: a request that is not idempotent may have reached the server and
                no answer came; it was not sent again.
            TransportError: no answer came, and retrying could not help or ran out of tries.
            DecodeError: the answer's body is larger than the limit.
        """
        retry = 0
        while True:
            if request.not_after is not None and elapsed() > request.not_after:
                raise TransportError(  # its attempt's window to leave closed: it never left
                    f"{request.method} {request.display_url} was not sent: it could not leave in time",
                    method=request.method,
                    url=request.display_url,
                    attempts=retry,
                )
            started = time.perf_counter()
            failed: Exception | None = None
            try:
                response = await self._send_once(request)
            except AdultWorkError:
                raise  # the body limit: already ours
            except Exception as exc:  # aiohttp's errors, OSError, TimeoutError, and the unforeseen
                failed = exc
            if failed is not None:
                failure = _classify(failed)
                wait = None
                if failure is not None:
                    wait = self.retry.after_failure(failure, idempotent=request.idempotent, retry=retry)
                if wait is None:
                    # Raised outside the except block, so that the original is not even the
                    # __context__ of ours: only its redacted stand-in is chained.
                    raise self._give_up(request, failed, failure, attempts=retry + 1) from stand_in(
                        failed, request.secrets
                    )
                log.warning(
                    "%s %s failed (%s); retry %d in %.2f s",
                    request.method,
                    request.display_url,
                    _describe(failed, request),
                    retry + 1,
                    wait,
                )
                del failed  # its traceback holds this frame
            else:
                if 200 <= response.status < 300 and not log.isEnabledFor(logging.DEBUG):
                    return response  # the common case: nothing to log, nothing to retry
                if log.isEnabledFor(logging.DEBUG):  # display_url is not free: build it only if shown
                    log.debug(
                        "%s %s -> %d in %.3f s (try %d)",
                        request.method,
                        request.display_url,
                        response.status,
                        time.perf_counter() - started,
                        retry + 1,
                    )
                retry_after = (
                    parse_retry_after(response.headers.get("Retry-After"))
                    if response.status == 429 or response.status >= 500
                    else None
                )
                wait = self.retry.after_status(
                    response.status, idempotent=request.idempotent, retry=retry, retry_after=retry_after
                )
                if wait is None:
                    return response
                log.warning(
                    "%s %s answered %d; retry %d in %.2f s",
                    request.method,
                    request.display_url,
                    response.status,
                    retry + 1,
                    wait,
                )
            await _sleep(wait)
            retry += 1

    async def _send_once(self, request: Request) -> Response:
        session = self._get_session()
        async with session.request(
            request.method,
            request.url,
            headers=request.headers,
            data=request.body,
            timeout=self._timeout,
            allow_redirects=False,  # a redirect would carry the bearer token to another URL
            raise_for_status=False,  # statuses are ours to map
        ) as resp:
            self._open_responses += 1
            try:
                body = await self._read_body(resp)
            finally:
                self._open_responses -= 1
            return Response(resp.status, resp.headers, body)

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self._max_body_bytes
        length = resp.content_length
        if length is not None and length > limit:
            raise DecodeError(f"body of {length} bytes exceeds the limit of {limit} bytes")
        if length is not None and resp.headers.get("Content-Encoding", "identity").lower() == "identity":
            return await resp.read()  # exactly `length` bytes: aiohttp holds the server to it
        # Compressed (Content-Length counts the compressed bytes) or of unknown length: count what
        # arrives after decompression, and stop at the limit.
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise DecodeError(f"body exceeds the limit of {limit} bytes (after decompression)")
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _give_up(
        request: Request, exc: Exception, failure: Failure | None, *, attempts: int
    ) -> TransportError:
        what = _describe(exc, request)
        where = f"{request.method} {request.display_url}"
        tries = f" after {attempts} tries" if attempts > 1 else ""
        if failure is Failure.OUTCOME_UNKNOWN and not request.idempotent:
            return OutcomeUnknownError(
                f"{where} may have reached the server, but no answer came ({what}); it was not "
                "sent again: check its effect before retrying",
                method=request.method,
                url=request.display_url,
                attempts=attempts,
            )
        if failure is Failure.NOT_SENT:
            message = f"{where} could not be sent{tries}: {what}"
        elif failure is None:
            message = f"{where} failed: {what}"
        else:
            message = f"{where} got no answer{tries}: {what}"
        return TransportError(message, method=request.method, url=request.display_url, attempts=attempts)


def _describe(exc: Exception, request: Request) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        text = "timed out"
    return redact(f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text, request.secrets)
