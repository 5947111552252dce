"""The aiohttp exchange: one try of a request over aiohttp. The only module that imports aiohttp's
client.

It owns the session, the timeouts, the body limit, and the one mapping of aiohttp's exceptions (and
of anything else that goes wrong while a request is exchanged) to an
:class:`~aw_async._transport.ExchangeError` that says whether the request may have left (httpx's
``_transports/default.py``). What happens between tries is :class:`~aw_async._transport.Transport`'s.

A borrowed ``aiohttp.ClientSession`` lends its *connection pool*, never its state: requests go
through a session of the exchange's own that shares the borrowed session's connector (and its
``trust_env`` and trace configs) but has no cookie jar, no middlewares, no default headers and no
``raise_for_status``. So a cookie one user's answer sets is never sent with another user's request,
and no middleware of the application's can send a POST a second time.

Trace configs: the session's are exactly the borrowed session's, or for a session created here the
client's ``trace_configs`` (and whatever an instrumentor that patches ``ClientSession.__init__``
adds, as OpenTelemetry's does). So a borrowed instrumented session traces each try once, not twice.
Each is seen through a proxy that shows it no secret: URLs redacted as error messages are, the
``Authorization`` header's credentials and every known secret starred out, chunks of a body
replaced by as many ``*`` bytes, and an exception whose text holds a secret replaced by a redacted
stand-in of the same type name. Headers an instrumentor adds at the start (``traceparent``) still
reach the request.

Invariants:

- ``asyncio.CancelledError`` is never caught: only ``Exception`` subclasses are mapped, and the
  response is read inside ``async with``, which releases the connection however the block ends.
- aiohttp's own silent retry on a dead keep-alive connection covers idempotent methods only, so it
  never re-sends a POST.
- A third-party exception is never chained as it is (aiohttp's carry the request's headers): a
  redacted stand-in is.
- A body is limited while it is read, counted after decompression: a small gzip body cannot
  inflate past the limit.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import aiohttp
import attrs
from multidict import CIMultiDict
from yarl import URL

from ._protocol import Request, Response
from ._redact import RedactedCause, redact, redact_url, redact_url_in, stand_in
from ._retry import SendFailure
from ._transport import ExchangeError
from .codecs._base import DEFAULT_MAX_BODY_BYTES
from .errors import AdultWorkError, ClientClosedError, DecodeError, TransportError

__all__ = ["AiohttpExchange", "classify", "exchange_error"]

_CHUNK = 64 * 1024


def classify(exc: BaseException) -> SendFailure | None:
    """What a failure of a try means for a retry; None when trying again cannot help."""
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ServerFingerprintMismatch):
        return None  # a certificate that does not verify will not verify next time either
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return SendFailure.NOT_SENT  # no connection was ever made
    if isinstance(exc, ConnectionRefusedError):  # as a MockTransport handler says it
        return SendFailure.NOT_SENT  # no connection was ever made
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None
    # Read timeouts, the whole-request timeout, a reset, a disconnect, a truncated body, a status
    # line or header aiohttp cannot parse, and anything unforeseen while the answer was read (a
    # decompressor's error): the request was (or may have been) written, and no usable answer came.
    return SendFailure.OUTCOME_UNKNOWN


def exchange_error(exc: Exception, request: Request) -> ExchangeError:
    """``exc``, raised while ``request`` was exchanged, as an :class:`ExchangeError` with no secret."""
    return ExchangeError(classify(exc), _describe(exc, request), stand_in(exc, request.secrets))


class AiohttpExchange:
    """One try of a request over aiohttp.

    Args:
        session: a session to borrow (never closed here); None to create one on first use.
        timeout: seconds one try may take, from connecting to the last byte of the body.
        max_body_bytes: a larger body is refused while it is read.
        trace_configs: for a session created here (a borrowed session's own apply to it).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None,
        timeout: float,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if session is not None and trace_configs:
            raise ValueError(
                "trace_configs apply to a session the client creates; a borrowed session's own apply"
            )
        self._borrowed = session
        self._trace_configs = list(trace_configs)
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=min(timeout, 10.0))
        self._max_body_bytes = max_body_bytes
        self._open_responses = 0
        self._closed = False

    @property
    def connections_in_use(self) -> int:
        """How many connections of the pool are checked out right now (0 when nothing is in flight).

        aiohttp keeps no public count, so this reads its connector's set of acquired connections,
        here and nowhere else; were that ever gone, the count of responses this exchange holds open
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
        if self._closed:  # a retry that waited while the client closed: never a new session
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
                session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=self._timeout,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trace_configs=self._trace_configs or None,
                )
                traced = list(session.trace_configs)  # the client's, and an instrumentor's
            else:
                session = aiohttp.ClientSession(
                    connector=borrowed.connector,
                    connector_owner=False,  # the pool stays the application's
                    timeout=self._timeout,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    trust_env=borrowed.trust_env,
                )
                traced = list(borrowed.trace_configs)  # exactly the borrowed session's
            install_trace_configs(session, traced)
            self._session = session
        return self._session

    async def close(self) -> None:
        """Close the exchange's session; a borrowed session's connection pool is left open."""
        self._closed = True
        if self._session is not None:
            await self._session.close()  # closes the connector only when it was created here
        self._session = None

    async def __call__(self, request: Request) -> Response:
        """One try of ``request``.

        Raises:
            ExchangeError: no usable answer came (never sent, or the outcome is unknown).
            DecodeError: the body is larger than the limit.
            TransportError: the borrowed session is closed.
            ClientClosedError: the exchange is closed.
        """
        session = self._get_session()
        failed: Exception | None = None
        try:
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect would carry the bearer token to another URL
                raise_for_status=False,  # statuses are ours to map
                trace_request_ctx=request.secrets,  # what the trace configs' proxies redact
            ) as resp:
                self._open_responses += 1
                try:
                    body = await self._read_body(resp)
                finally:
                    self._open_responses -= 1
                return Response(resp.status, resp.headers, body)
        except AdultWorkError:
            raise  # the body limit: already ours
        except Exception as exc:  # aiohttp's errors, OSError, TimeoutError, and the unforeseen
            failed = exc
        # Raised outside the except block, so that the original is not even the __context__ of
        # ours: only its redacted stand-in is chained.
        error = exchange_error(failed, request)
        del failed  # its traceback holds this frame
        raise error

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


def _describe(exc: Exception, request: Request) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ClientError):
        text = "timed out"
    return redact(f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text, request.secrets)


# --- trace configs that see no secret ------------------------------------------------------------

_SIGNALS = tuple(name for name in dir(aiohttp.TraceConfig) if name.startswith("on_"))
_CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def install_trace_configs(session: aiohttp.ClientSession, configs: Sequence[aiohttp.TraceConfig]) -> None:
    """Make ``configs``, each behind a redacting proxy, the session's trace configs: exactly these.

    aiohttp has no public way to set a session's trace configs after ``__init__``, and an
    instrumentor's patched ``__init__`` may have added one of its own; this writes the attribute
    aiohttp reads them from, as OpenTelemetry's own ``uninstrument_session`` does. A test holds it
    (tests/transport/test_tracing.py)."""
    if not configs and not session.trace_configs:
        return  # the hot path of an application that does not trace
    session._trace_configs = [_redacting(config) for config in configs]


def _redacting(original: aiohttp.TraceConfig) -> aiohttp.TraceConfig:
    """A trace config that forwards every signal to ``original`` with its secrets taken out."""

    def context(trace_request_ctx: Any = None) -> SimpleNamespace:
        secrets = trace_request_ctx if isinstance(trace_request_ctx, tuple) else ()
        return SimpleNamespace(inner=original.trace_config_ctx(), secrets=secrets)

    proxy = aiohttp.TraceConfig(trace_config_ctx_factory=context)  # type: ignore[arg-type]
    for name in _SIGNALS:
        if len(getattr(original, name)):
            getattr(proxy, name).append(functools.partial(_forward, getattr(original, name)))
    proxy.freeze()
    return proxy


async def _forward(signal: Any, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any) -> None:
    secrets: tuple[str, ...] = ctx.secrets
    fields = attrs.fields_dict(type(params))
    changes: dict[str, Any] = {}
    if "url" in fields:
        changes["url"] = URL(redact(redact_url(str(params.url)), secrets), encoded=True)
    headers: CIMultiDict[str] | None = None
    if "headers" in fields:
        headers = changes["headers"] = _redacted_headers(params.headers, secrets)
    if "chunk" in fields:
        changes["chunk"] = b"*" * len(params.chunk)
    if "exception" in fields:
        changes["exception"] = _redacted_exception(params.exception, secrets)
    await signal.send(session, ctx.inner, attrs.evolve(params, **changes) if changes else params)
    if headers is not None and isinstance(params, aiohttp.TraceRequestStartParams):
        for name, value in headers.items():  # what the tracer added, a trace context, goes out
            if name not in params.headers:
                params.headers.add(name, value)


def _redacted_headers(headers: CIMultiDict[str], secrets: tuple[str, ...]) -> CIMultiDict[str]:
    copy: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS:
            scheme, _, credentials = value.partition(" ")
            value = f"{scheme} ***" if credentials else "***"
        copy.add(name, redact(value, secrets))
    return copy


def _redacted_exception(exc: BaseException, secrets: tuple[str, ...]) -> BaseException:
    text, depth = "", 0
    link: BaseException | None = exc
    while link is not None and depth < 8:
        text += f"{link}\n"
        link, depth = link.__cause__ or link.__context__, depth + 1
    if redact(redact_url_in(text), secrets) == text:
        return exc
    return _stand_in_type(type(exc).__name__, type(exc).__qualname__)(
        str(stand_in(exc, secrets)), original_type=type(exc).__qualname__
    )


@functools.lru_cache(maxsize=64)
def _stand_in_type(name: str, qualname: str) -> Callable[..., RedactedCause]:
    """A :class:`RedactedCause` that bears an exception type's name, so that a span's
    ``error.type`` still says what failed."""
    return type(name, (RedactedCause,), {"__qualname__": qualname})
