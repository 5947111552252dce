"""The OAuth 2.0 refresh grant of Unified Login (docs/api.md, "Access tokens"), with no I/O.

``POST https://platform.adultwork.com/OAuth/token``, form-encoded ``grant_type=refresh_token``,
``client_id``, ``client_secret``, ``refresh_token``; the answer is JSON ``{"access_token",
"token_type", "expires_in", "refresh_token"}``, and the refresh token is **replaced** on every
refresh. A refused refresh answers ``401 {"error": "refresh_token_has_expired"}``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import attrs

from ._protocol import Request, Response, api_error
from ._redact import redact
from .errors import AuthenticationError, DecodeError

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "TOKEN_URL",
    "RefreshAnswer",
    "TokenSet",
    "build_refresh_request",
    "decipher_refresh_response",
]

TOKEN_URL = "https://platform.adultwork.com/OAuth/token"


def _hidden(value: str) -> str:
    return "<redacted>" if value else "''"


#: An access token's lifetime when the answer does not say (docs/api.md: they live 20 minutes).
DEFAULT_EXPIRES_IN = 1200
#: The longest lifetime believed; a larger ``expires_in`` (or an unreadable one) means "unknown":
#: the token is then used until the server refuses it. 14 days is the refresh token's own life.
MAX_EXPIRES_IN = 14 * 24 * 3600


@attrs.frozen
class TokenSet:
    """What a refresh gives: a new access token and the refresh token that **replaces** the old one.

    Persist ``refresh_token`` before anything else: the old one no longer works. The ``repr`` shows
    neither token. ``access_token`` is empty when the server's answer carried none that can be
    used (the refresh token in that answer must still be kept: it is the only valid one).
    """

    access_token: str = attrs.field(repr=_hidden)
    refresh_token: str = attrs.field(repr=_hidden)
    expires_at: datetime | None
    """When the access token expires (aware, UTC): now plus the server's ``expires_in``; None when
    the answer gave no usable lifetime (the token is then used until the server refuses it)."""
    token_type: str = "bearer"


def build_refresh_request(
    *, token_url: str, client_id: str, client_secret: str, refresh_token: str, user_agent: str
) -> Request:
    """The refresh-grant request. Not idempotent: a refresh consumes the refresh token it sends."""
    body = urlencode(
        {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }
    ).encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Accept": "application/json",
        "User-Agent": user_agent,
    }
    return Request("POST", token_url, headers, body, False, (client_secret, refresh_token))


@attrs.frozen
class RefreshAnswer:
    """A 2xx answer of the token endpoint, read as far as it can be.

    Attributes:
        tokens: the new tokens. ``refresh_token`` is empty when the answer carried none: the old
            one then stays valid (RFC 6749, section 6).
        problem: what makes the answer unusable as it stands (no access token), to raise once the
            new refresh token is safe.
    """

    tokens: TokenSet
    problem: DecodeError | None = None


def decipher_refresh_response(request: Request, response: Response, now: datetime) -> RefreshAnswer:
    """The new tokens, or the error a refused refresh deserves.

    A 2xx answer's new refresh token is kept whatever else is odd about the answer: it is the only
    valid one once the server has rotated it. A missing ``expires_in`` means the documented 20
    minutes; one that is not a positive number of seconds up to 14 days means "unknown".

    Raises:
        AuthenticationError: the token endpoint refused the refresh (400 or 401); ``error`` carries
            the server's code, such as ``refresh_token_has_expired``.
        ApiError: any other non-2xx answer (a ``ServerError`` for 5xx).
        DecodeError: a 2xx whose body is not a JSON object.
    """
    document = _json_object(response.body) if response.body else None
    if response.status in (400, 401):
        code = document.get("error") if document else None
        code = redact(code, request.secrets) if isinstance(code, str) else None
        description = document.get("error_description") if document else None
        message = f"token refresh refused: {code or 'no reason given'}"
        if isinstance(description, str) and description:
            message += f" ({description})"
        if code == "refresh_token_has_expired":
            message += (
                ": the refresh token has expired (14 days) or was already used: a refresh replaces it,"
                " and a new one that was never saved is lost. The user must log in again"
            )
        raise api_error(response, request, message=message, error_class=AuthenticationError, error=code)
    if not 200 <= response.status < 300:
        raise api_error(response, request)
    if document is None:
        raise DecodeError("the token endpoint answered with a body that is not a JSON object")
    refresh_token = document.get("refresh_token")
    access_token = document.get("access_token")
    token_type = document.get("token_type")
    problem = None
    if not (isinstance(access_token, str) and access_token):
        problem = DecodeError("the token response has no usable access_token", path="access_token")
        access_token = ""
    if not (isinstance(refresh_token, str) and refresh_token):
        if problem is not None:  # nothing in it to keep
            raise problem
        refresh_token = ""
    tokens = TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=_expiry(document, now) if not problem else now,
        token_type=token_type if isinstance(token_type, str) else "bearer",
    )
    return RefreshAnswer(tokens, problem)


def _expiry(document: dict[str, Any], now: datetime) -> datetime | None:
    if "expires_in" not in document or document["expires_in"] is None:
        return now + timedelta(seconds=DEFAULT_EXPIRES_IN)
    value = document["expires_in"]
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None
    if type(value) not in (int, float) or not 0 < value <= MAX_EXPIRES_IN:  # also NaN and infinities
        return None
    return now + timedelta(seconds=value)


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        # An integer too long to convert (expires_in of 5,000 digits) must not lose the whole answer.
        document = json.loads(body, parse_int=_lenient_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def _lenient_int(text: str) -> float:
    return int(text) if len(text) < 20 else math.inf
