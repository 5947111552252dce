"""The OAuth 2.0 refresh grant of Unified Login (API.md, "Access tokens"), with no I/O.

``POST https://platform.adultwork.com/OAuth/token``, form-encoded ``grant_type=refresh_token``,
``client_id``, ``client_secret``, ``refresh_token``; the answer is JSON ``{"access_token",
"token_type", "expires_in", "refresh_token"}``, and the refresh token is **replaced** on every
refresh. A refused refresh answers ``401 {"error": "refresh_token_has_expired"}``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import attrs

from ._protocol import Request, Response, api_error
from .errors import AuthenticationError, DecodeError

__all__ = ["TOKEN_URL", "TokenSet", "build_refresh_request", "decipher_refresh_response"]

TOKEN_URL = "https://platform.adultwork.com/OAuth/token"


def _hidden(value: str) -> str:
    return "<redacted>" if value else "''"


@attrs.frozen
class TokenSet:
    """What a refresh gives: a new access token and the refresh token that **replaces** the old one.

    Persist ``refresh_token`` before anything else: the old one no longer works. The ``repr`` shows
    neither token.
    """

    access_token: str = attrs.field(repr=_hidden)
    refresh_token: str = attrs.field(repr=_hidden)
    expires_at: datetime
    """When the access token expires (aware, UTC): now plus the server's ``expires_in``."""
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


def decipher_refresh_response(request: Request, response: Response, now: datetime) -> TokenSet:
    """The new tokens, or the error a refused refresh deserves.

    Raises:
        AuthenticationError: the token endpoint refused the refresh (400 or 401); ``error`` carries
            the server's code, such as ``refresh_token_has_expired``.
        ApiError: any other non-2xx answer (a ``ServerError`` for 5xx).
        DecodeError: a 2xx whose body is not a token response.
    """
    document = _json_object(response.body) if response.body else None
    if response.status in (400, 401):
        code = document.get("error") if document else None
        code = code if isinstance(code, str) else None
        description = document.get("error_description") if document else None
        message = f"token refresh refused: {code or 'no reason given'}"
        if isinstance(description, str) and description:
            message += f" ({description})"
        raise AuthenticationError(
            response.status,
            None,
            error=code,
            message=message,
            method=request.method,
            url=request.display_url,
            headers=response.headers,
        )
    if not 200 <= response.status < 300:
        raise api_error(response, request)
    if document is None:
        raise DecodeError("the token endpoint answered with a body that is not a JSON object")
    try:
        access_token = document["access_token"]
        refresh_token = document["refresh_token"]
        expires_in = document["expires_in"]
    except KeyError as exc:
        raise DecodeError(f"the token response has no {exc.args[0]!r}", path=exc.args[0]) from None
    if not (isinstance(access_token, str) and access_token and isinstance(refresh_token, str)):
        raise DecodeError("the token response's tokens are not strings", path="access_token")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if type(expires_in) is not int or expires_in <= 0:
        raise DecodeError("the token response's expires_in is not a positive integer", path="expires_in")
    token_type = document.get("token_type")
    return TokenSet(
        access_token=access_token,
        refresh_token=refresh_token,
        expires_at=now + timedelta(seconds=expires_in),
        token_type=token_type if isinstance(token_type, str) else "bearer",
    )


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return document if isinstance(document, dict) else None
