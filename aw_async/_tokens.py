"""Access tokens: a fixed one, or one refreshed on its own (API.md, "Access tokens").

A token provider gives the access token for the next request, and is told when the server refused
one (a 401). :class:`RefreshingToken` refreshes shortly before expiry and once after a 401.

Invariants of :class:`RefreshingToken`:

- One refresh at a time, and only when needed: every caller that finds the token expired waits on
  the same lock and re-checks after it, so a hundred concurrent calls cause one refresh.
- The refresh token is replaced on every refresh, and the old one stops working. The new one is
  kept in memory the moment it arrives, then handed to ``on_refresh``; the new access token is used
  only once ``on_refresh`` has returned. If ``on_refresh`` raises, its error reaches the caller, the
  new access token is not used, and the next call refreshes again (with the new refresh token) and
  calls ``on_refresh`` again: a failed save is retried, never silently skipped.
- No secret appears in a ``repr``, a ``str`` or a log line.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from ._oauth import TOKEN_URL, TokenSet, build_refresh_request, decipher_refresh_response
from ._transport import Send
from ._version import __version__

__all__ = ["RefreshingToken", "StaticToken", "TokenProvider", "TokenSet"]

log = logging.getLogger("aw_async")

OnRefresh = Callable[[TokenSet], Awaitable[None] | None]


class TokenProvider(Protocol):
    """What the client needs of a token: the current one, and a way to replace a refused one."""

    async def access_token(self, send: Send) -> str:
        """The access token to send now (refreshing first if it is about to expire)."""
        ...

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        """The server refused ``rejected`` (401): refresh it if possible. True if a call may be
        tried again with :meth:`access_token`."""
        ...


class StaticToken:
    """An access token that is used as is; a 401 is final."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("an access token must be a non-empty string")
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"

    async def access_token(self, send: Send) -> str:
        return self._token

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        return False


class RefreshingToken:
    """An access token refreshed with the OAuth refresh grant, before it expires and after a 401.

    Args:
        client_id, client_secret: the application's credentials.
        refresh_token: the user's current refresh token (14 days; replaced on every refresh).
        access_token: the current access token, if there is one.
        expires_at: when ``access_token`` expires (aware; a naive value is read as UTC). Unknown
            means "refresh before first use".
        on_refresh: called with each new :class:`TokenSet`, and awaited if it is a coroutine
            function: persist ``refresh_token`` here, or the user is locked out on restart.
        token_url: the token endpoint.
        refresh_margin: refresh this long before expiry, so no request leaves with a token that
            expires on the way.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        access_token: str | None = None,
        expires_at: datetime | None = None,
        on_refresh: OnRefresh | None = None,
        token_url: str = TOKEN_URL,
        refresh_margin: timedelta = timedelta(seconds=60),
    ) -> None:
        for name, value in (
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("refresh_token", refresh_token),
        ):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name} must be a non-empty string")
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._access_token = access_token
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        self._expires_at = expires_at
        self._on_refresh = on_refresh
        self._token_url = token_url
        self._margin = refresh_margin
        self._lock = asyncio.Lock()
        #: How many refreshes this token has done (for tests and metrics).
        self.refreshes = 0

    def __repr__(self) -> str:
        expires = self._expires_at.isoformat(timespec="seconds") if self._expires_at else None
        return f"RefreshingToken(client_id={self._client_id!r}, expires_at={expires!r})"

    @property
    def token_url(self) -> str:
        """The token endpoint this token refreshes at."""
        return self._token_url

    @property
    def expires_at(self) -> datetime | None:
        """When the current access token expires, if known."""
        return self._expires_at

    def _needs_refresh(self) -> bool:
        if self._access_token is None:
            return True
        if self._expires_at is None:
            return False  # an access token of unknown life is used until the server refuses it
        return datetime.now(UTC) >= self._expires_at - self._margin

    async def access_token(self, send: Send) -> str:
        if self._needs_refresh():
            async with self._lock:
                if self._needs_refresh():  # another caller may have refreshed while we waited
                    await self._refresh(send)
        assert self._access_token is not None
        return self._access_token

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        async with self._lock:
            if self._access_token == rejected:  # nobody has replaced it yet
                self._access_token = None
                await self._refresh(send)
        return True

    async def _refresh(self, send: Send) -> None:
        request = build_refresh_request(
            token_url=self._token_url,
            client_id=self._client_id,
            client_secret=self._client_secret,
            refresh_token=self._refresh_token,
            user_agent=f"aw-async/{__version__}",
        )
        response = await send(request)
        tokens = decipher_refresh_response(request, response, datetime.now(UTC))
        self._refresh_token = tokens.refresh_token  # the old one is dead: never lose the new one
        self.refreshes += 1
        log.info("access token refreshed; it expires at %s", tokens.expires_at.isoformat(timespec="seconds"))
        if self._on_refresh is not None:
            outcome = self._on_refresh(tokens)
            if inspect.isawaitable(outcome):
                await outcome
        self._access_token = tokens.access_token
        self._expires_at = tokens.expires_at
