"""The protocol layer: requests built and responses deciphered, with no I/O.

Given an endpoint declaration and its arguments, :func:`build_request` gives method, URL, headers
and body; given status, headers and body, :func:`decipher_response` gives the model or raises the
:class:`~aw_async.errors.ApiError` for the status. Nothing here awaits or opens a socket, so all of
it is tested without an event loop (the design of gidgethub's ``sansio``).
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlencode, urlsplit

import attrs

from ._endpoints import Endpoint
from ._redact import excerpt, redact, redact_url, scrub_exception
from .codecs import JsonCodec
from .codecs._base import CodecSet
from .codecs._query import encode_query
from .codecs._registry import BUILT_IN_CODECS
from .errors import (
    ApiError,
    AuthenticationError,
    DecodeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from .models import ErrorBody

__all__ = [
    "MAX_RETRY_AFTER",
    "Request",
    "RequestSettings",
    "Response",
    "api_error",
    "api_root",
    "build_request",
    "decipher_response",
    "parse_retry_after",
]

R = TypeVar("R")

_JSON_BODY = "application/json; charset=utf-8"  # "serialized JSON in the request body" (the vendor)
#: Request bodies are JSON whatever format the answers come in (docs/api.md), written by contract.
_JSON = JsonCodec()


@attrs.frozen(repr=False)
class Request:
    """A request ready to send. Its ``repr`` shows no header and no secret."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None
    idempotent: bool
    """The transport may send it again when the outcome of a try is unknown."""
    secrets: tuple[str, ...] = ()
    """What must never appear in a message about this request (token, API key)."""
    not_after: float | None = None
    """For a POST held to a deadline (a reschedule whose attempt must not leave late): the reading
    of :func:`aw_async._clock.elapsed` after which no try may start; None: no deadline."""

    @property
    def display_url(self) -> str:
        """The URL with secret query parameters (``apiKey``) redacted: for logs and errors."""
        return redact_url(self.url)

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.display_url}>"


@attrs.frozen(repr=False)
class Response:
    """What came back: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers.get('Content-Type', '')} {len(self.body)} bytes>"


@attrs.frozen(repr=False)
class RequestSettings:
    """What every request of one client carries."""

    base_url: str
    accept: str
    user_agent: str
    api_key: str | None = None
    static_headers: Mapping[str, str] = attrs.field(init=False, eq=False)
    """The headers that do not change from request to request, built once."""
    root: str = attrs.field(init=False, eq=False)
    """``base_url`` without its trailing slashes, which every path follows."""

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "static_headers", {"Accept": self.accept, "User-Agent": self.user_agent})
        object.__setattr__(self, "root", self.base_url.rstrip("/"))


_DEFAULT_PORTS = {"http": 80, "https": 443}


def api_root(base_url: str) -> str:
    """``base_url`` normalised, so that one server has one name in the journal's keys: the scheme and
    host in lower case, no default port, no trailing slash, no query."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def build_request(
    endpoint: Endpoint[Any],
    request: object,
    *,
    settings: RequestSettings,
    token: str,
    as_user: int | None = None,
    not_after: float | None = None,
) -> Request:
    """The request for one call of ``endpoint``.

    Args:
        request: the operation's request model (``endpoint.request``): written by its contract as
            the query string of a GET, or as the JSON body of a POST (exact decimals, server-local
            datetimes), by the codec layer.
        token: the access token, sent as ``Authorization: bearer <token>`` (docs/api.md).
        as_user: call the group-manager variant for this member (``UserID``).
        not_after: no try may start after this reading of the elapsed clock (:class:`Request`).

    Raises:
        TypeError: ``request`` is not the endpoint's request model.
        ValueError: ``as_user`` for an endpoint that has no group-manager variant.
    """
    if type(request) is not endpoint.request:
        raise TypeError(f"{endpoint.name} takes a {endpoint.request.__name__}, not {type(request).__name__}")
    path = endpoint.path
    query: dict[str, str] = {}
    if as_user is not None:
        if endpoint.group_path is None:
            raise ValueError(f"{endpoint.name} has no group-manager variant")
        path = endpoint.group_path
        query["UserID"] = str(as_user)
    body = None
    # Lower-case "bearer", as in every vendor sample.
    headers = {"Authorization": f"bearer {token}", **settings.static_headers}
    if endpoint.method == "GET":
        query.update(encode_query(request))
    else:
        headers["Content-Type"] = _JSON_BODY
        body = _JSON.encode(request)
    if settings.api_key is not None:
        query["apiKey"] = settings.api_key
    url = settings.root + path
    if query:
        url += "?" + urlencode(query)
    secrets = tuple(s for s in (token, settings.api_key) if s)
    return Request(endpoint.method, url, headers, body, endpoint.idempotent, secrets, not_after)


def decipher_response(
    endpoint: Endpoint[R],
    request: Request,
    response: Response,
    codecs: CodecSet,
    *,
    acting_for: int | None = None,
) -> R:
    """The model a 2xx answer carries, decoded by its ``Content-Type`` (not by what was asked).

    Raises:
        ApiError: (a subclass for) any status that is not 2xx.
        DecodeError: a 2xx whose body is not a valid ``endpoint.response``, or of a media type no
            codec serves. A codec that fails in any other way (a user's own) is reported the same
            way: nothing but a :class:`DecodeError` leaves decoding.
    """
    if not 200 <= response.status < 300:
        raise api_error(response, request, scope=endpoint.scope, codecs=codecs, acting_for=acting_for)
    try:
        return codecs.decode(
            response.body, endpoint.response, content_type=response.headers.get("Content-Type")
        )
    except Exception as exc:
        # A value quoted in the message may be one the server echoed: a token, an API key.
        scrub_exception(exc, request.secrets)
        detail = exc if isinstance(exc, DecodeError) else f"{type(exc).__name__}: {exc}"
        raise DecodeError(
            redact(f"{endpoint.name} answered {response.status} with {detail}", request.secrets),
            path=getattr(exc, "path", None),
            line=getattr(exc, "line", None),
            column=getattr(exc, "column", None),
        ) from exc


_ERROR_CLASSES: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def api_error(
    response: Response,
    request: Request,
    *,
    scope: str = "",
    codecs: CodecSet | None = None,
    now: datetime | None = None,
    message: str | None = None,
    error_class: type[ApiError] | None = None,
    acting_for: int | None = None,
    **extra: Any,
) -> ApiError:
    """The typed error for a non-2xx answer, with the server's ``HttpError`` body when it sent one
    in JSON or XML, and a short, safe excerpt of the body otherwise (an HTML page from a proxy).

    This is the one place an :class:`ApiError` is made from an answer, so it is the one place that
    keeps echoed secrets out of it: the message, every text of the body and every header value are
    redacted with the request's secrets.

    Args:
        message: the message to use instead of one made from the body (the token endpoint's).
        error_class: the class to use instead of the one for the status.
        extra: more keyword arguments for the error class.
    """
    secrets = request.secrets
    body, described = _error_body(response, secrets, codecs or BUILT_IN_CODECS)
    details: dict[str, Any] = {
        "message": redact(message, secrets) if message is not None else described,
        "method": request.method,
        "url": request.display_url,
        "headers": {name: redact(value, secrets) for name, value in response.headers.items()},
        **extra,
    }
    status = response.status
    cls = error_class or _ERROR_CLASSES.get(status, ServerError if status >= 500 else ApiError)
    if cls is PermissionDeniedError:
        details["scope"] = scope
        details["acting_for"] = acting_for
    elif cls is RateLimitError:
        details["retry_after"] = parse_retry_after(response.headers.get("Retry-After"), now)
    return cls(status, body, **details)


def _error_body(response: Response, secrets: Iterable[str], codecs: CodecSet) -> tuple[ErrorBody | None, str]:
    """The decoded HttpError (redacted) and a message from it; or None and an excerpt of what came
    instead."""
    if response.body:
        try:
            body = codecs.decode(response.body, ErrorBody, content_type=response.headers.get("Content-Type"))
        except Exception:  # not JSON or XML, not an HttpError, or a codec's own failure:
            pass  # an excerpt says what it was
        else:
            body = _redact_body(body, tuple(secrets))
            return body, _describe_error(body)
    return None, excerpt(response.body, secrets) or "(empty body)"


def _redact_body(body: ErrorBody, secrets: tuple[str, ...]) -> ErrorBody:
    """``body`` with every text in it (nested errors and ModelState included) redacted."""

    def clean(text: str | None) -> str | None:
        return redact(text, secrets) if text else text

    return attrs.evolve(
        body,
        message=clean(body.message),
        message_detail=clean(body.message_detail),
        exception_message=clean(body.exception_message),
        exception_type=clean(body.exception_type),
        stack_trace=clean(body.stack_trace),
        inner=_redact_body(body.inner, secrets) if body.inner is not None else None,
        model_state={
            redact(key, secrets): [redact(m, secrets) for m in messages]
            for key, messages in body.model_state.items()
        },
    )


def _describe_error(body: ErrorBody) -> str:
    parts = [body.message or "(no message)"]
    if body.message_detail:
        parts.append(body.message_detail)
    if body.exception_message:
        parts.append(body.exception_message)
    for key, messages in body.model_state.items():
        parts.append(f"{key}: {' '.join(messages)}")
    return " | ".join(parts)


#: The longest wait a ``Retry-After`` can express here (about 31 years). A longer value, even one of
#: a thousand digits, means the same to a client: not within any wait it would accept.
MAX_RETRY_AFTER = 1e9


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110).

    Returns None for a missing or unreadable value; a date in the past gives 0; anything longer
    than :data:`MAX_RETRY_AFTER` gives that (so the result is always a finite float).
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        # Compared as text: int() of a few thousand digits is slow or refused, float() overflows.
        if len(digits) > len(str(int(MAX_RETRY_AFTER))):
            return MAX_RETRY_AFTER
        return min(float(int(value)), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)
