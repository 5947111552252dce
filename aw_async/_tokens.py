"""Access tokens: a fixed one, or one refreshed on its own (docs/api.md, "Access tokens").

A token provider gives the access token for the next request, and is told when the server refused
one (a 401). :class:`RefreshingToken` refreshes shortly before expiry and once after a 401.

Invariants of :class:`RefreshingToken`:

- One refresh at a time, shared: a refresh runs as a task of its own (a *flight*), and every caller
  that needs a new token while it runs awaits that same flight and gets its result or its error.
  A caller that is cancelled stops waiting; the flight goes on for the others. A flight that fails
  (refused, lost, unknown outcome) is not re-sent by its waiters: the old refresh token may already
  be spent, and sending it again would get the user locked out. Only a later call starts a new one.
- The refresh token is replaced on every refresh, and the old one stops working. The new one is
  kept in memory the moment it arrives, whatever else is odd about the answer, then handed to
  ``on_refresh``; the new access token is used only once ``on_refresh`` has returned. If
  ``on_refresh`` raises, the call fails with :class:`~aw_async.errors.TokenNotSavedError`, and the
  next call hands the same tokens to ``on_refresh`` again before anything else (no new refresh).
- The refresh margin shrinks with the token's lifetime (at most half of it), so a token that lives
  30 seconds is not refreshed on every call.
- No secret appears in a ``repr``, a ``str`` or a log line.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import attrs

from ._oauth import TOKEN_URL, TokenSet, build_refresh_request, decipher_refresh_response
from ._redact import scrub_exception
from ._transport import Send
from ._version import __version__
from .errors import AuthenticationError, TokenNotSavedError

__all__ = ["RefreshingToken", "StaticToken", "TokenProvider", "TokenSet"]

log = logging.getLogger("aw_async")

OnRefresh = Callable[[TokenSet], Awaitable[None] | None]

#: Keys the digest that names a fixed token's account, so the digest is worth nothing elsewhere.
_PROCESS_KEY = os.urandom(32)


class TokenProvider(Protocol):
    """What the client needs of a token: the current one, and a way to replace a refused one."""

    async def access_token(self, send: Send) -> str:
        """The access token to send now (refreshing first if it is about to expire)."""
        ...

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        """The server refused ``rejected`` (401): refresh it if possible. True if a call may be
        tried again with :meth:`access_token`."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider holds, to keep out of messages."""
        ...

    @property
    def account(self) -> Hashable:
        """What names this provider's account (for the account's gate): never a secret."""
        ...


class StaticToken:
    """An access token that is used as is; a 401 is final."""

    def __init__(self, token: str) -> None:
        if not isinstance(token, str) or not token:
            raise ValueError("an access token must be a non-empty string")
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken(<redacted>)"

    @property
    def account(self) -> Hashable:
        """The token, by a digest keyed with a secret of this process: equal tokens are one account,
        and the digest tells nothing of the token outside the process."""
        return hashlib.blake2b(self._token.encode(), key=_PROCESS_KEY, digest_size=16).hexdigest()

    async def access_token(self, send: Send) -> str:
        return self._token

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        return False

    def secrets(self) -> tuple[str, ...]:
        return (self._token,)


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
        refresh_margin: refresh this long before expiry (at most half the lifetime of a token a
            refresh gave), so no request leaves with a token that expires on the way.
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
        self._on_refresh = on_refresh
        self._token_url = token_url
        self._margin = refresh_margin
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        self._expires_at: datetime | None = None
        self._refresh_after: datetime | None = None
        self._set_expiry(expires_at)
        self._unsaved: TokenSet | None = None
        """Tokens a refresh gave whose save (``on_refresh``) has not succeeded yet."""
        self._flight: asyncio.Future[None] | None = None
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

    @property
    def account(self) -> Hashable:
        """This object: its refresh chain is one user's, and the tokens it holds change."""
        return self

    def secrets(self) -> tuple[str, ...]:
        held = (self._access_token, self._refresh_token, self._client_secret)
        unsaved = (self._unsaved.access_token, self._unsaved.refresh_token) if self._unsaved else ()
        return tuple(s for s in (*held, *unsaved) if s)

    def _needs_refresh(self) -> bool:
        if self._unsaved is not None or self._access_token is None:
            return True
        if self._refresh_after is None:
            return False  # an access token of unknown life is used until the server refuses it
        return datetime.now(UTC) >= self._refresh_after

    def _adopt(self, tokens: TokenSet) -> None:
        """Use ``tokens`` from now on (they are saved)."""
        self._unsaved = None
        self._access_token = tokens.access_token or None
        expires = tokens.expires_at
        self._set_expiry(expires, lifetime=expires - datetime.now(UTC) if expires else None)

    def _set_expiry(self, expires_at: datetime | None, *, lifetime: timedelta | None = None) -> None:
        """Remember when the token expires and when to refresh it: ``refresh_margin`` early, or half
        the token's ``lifetime`` early when that is shorter (a token that lives 30 seconds is not
        refreshed on every call)."""
        self._expires_at = expires_at
        if expires_at is None:
            self._refresh_after = None
            return
        margin = self._margin if lifetime is None else min(self._margin, max(lifetime, timedelta(0)) / 2)
        self._refresh_after = expires_at - margin

    async def access_token(self, send: Send) -> str:
        if self._needs_refresh():
            await self._join_flight(send)  # once: a token fresh from the server is used as it is
            if self._access_token is None:  # a 401 elsewhere dropped it meanwhile: one more flight
                await self._join_flight(send)
        if self._access_token is None:
            raise AuthenticationError(401, None, message="no access token could be obtained")
        return self._access_token

    async def replace_rejected(self, rejected: str, send: Send) -> bool:
        if self._access_token == rejected and not self._in_flight():
            self._access_token = None  # nobody has replaced it yet
        if self._needs_refresh():
            await self._join_flight(send)
        return True

    def _in_flight(self) -> bool:
        return self._flight is not None and not self._flight.done()

    async def _join_flight(self, send: Send) -> None:
        """Await the refresh in flight, starting one if none is; its error is every waiter's."""
        flight = self._flight
        if flight is None or flight.done():
            flight = self._flight = asyncio.ensure_future(self._refresh(send))
            flight.add_done_callback(_retrieve)
        # shield: a waiter that is cancelled must not cancel the refresh the others wait for.
        await asyncio.shield(flight)

    async def _refresh(self, send: Send) -> None:
        if self._unsaved is None:
            request = build_refresh_request(
                token_url=self._token_url,
                client_id=self._client_id,
                client_secret=self._client_secret,
                refresh_token=self._refresh_token,
                user_agent=f"aw-async/{__version__}",
            )
            answer = decipher_refresh_response(request, await send(request), datetime.now(UTC))
            tokens = answer.tokens
            if not tokens.refresh_token:  # no new refresh token: the old one stays valid (RFC 6749)
                tokens = attrs.evolve(tokens, refresh_token=self._refresh_token)
            self._refresh_token = tokens.refresh_token  # the old one is dead: keep the new one
            self._unsaved = tokens
            self.refreshes += 1
            expires = tokens.expires_at
            log.info(
                "access token refreshed; it expires at %s",
                expires.isoformat(timespec="seconds") if expires else "an unknown time",
            )
            problem = answer.problem
        else:
            problem = None
            log.info("handing the refreshed tokens to on_refresh again")
        tokens = self._unsaved
        if self._on_refresh is not None:
            await self._save(tokens)
        self._adopt(tokens)
        if problem is not None:
            self._access_token = None  # the answer had no usable access token: refresh next time
            raise problem

    async def _save(self, tokens: TokenSet) -> None:
        assert self._on_refresh is not None
        try:
            outcome = self._on_refresh(tokens)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as exc:
            scrub_exception(exc, (tokens.access_token, tokens.refresh_token, self._client_secret))
            raise TokenNotSavedError(
                f"on_refresh raised {type(exc).__name__}: {exc}. The refresh token was replaced and"
                " the new one is only in memory: the next call hands it to on_refresh again; if"
                " this process ends before it is saved, the user must log in again"
            ) from exc


def _retrieve(flight: asyncio.Future[None]) -> None:
    """Mark a flight's error as seen: when all its waiters were cancelled, nobody else will."""
    if not flight.cancelled():
        flight.exception()
