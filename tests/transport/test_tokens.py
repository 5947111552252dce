"""Tokens: static ones, and refreshing ones that refresh once, persist the rotated refresh token
first, and never show a secret."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest

from aw_async import SANDBOX_URL, TOKEN_URL, AdultWorkClient, RefreshingToken, StaticToken, TokenSet
from aw_async.errors import AuthenticationError, OutcomeUnknownError, ServerError, TokenNotSavedError
from aw_async.testing import MockTransport, Request, Response

from ..answers import answer, error, raw

BALANCE_URL = f"{SANDBOX_URL}/v1/CreditHistory/GetCurrentCreditBalance"
CLIENT_SECRET = "client-secret-9a8b"
FIRST_REFRESH = "refresh-token-0001"


def payload(document: object, *, status: int = 200) -> Response:
    """A JSON answer of the token endpoint."""
    return Response(status, {"Content-Type": "application/json"}, json.dumps(document).encode())


class TokenServer:
    """The token endpoint and one API endpoint that accepts only the newest access token."""

    def __init__(self, *, expires_in: int = 1200) -> None:
        self.refresh_tokens = [FIRST_REFRESH]
        self.access_tokens: list[str] = []
        self.expires_in = expires_in
        self.api_calls: list[str] = []
        self.refresh_delay = 0.0
        self.refuse_with: Response | None = None
        self.deny_everything = False  # the API refuses even a freshly refreshed token
        self.answer_delay = 0.0  # keeps API calls in flight together
        self.transport = MockTransport(self.handle)

    def client(self, token: RefreshingToken, **kwargs: Any) -> AdultWorkClient:
        return AdultWorkClient(token, transport=self.transport, **kwargs)

    def refreshes_sent(self) -> int:
        return sum(1 for request in self.transport.requests if request.url == TOKEN_URL)

    async def handle(self, request: Request) -> Response:
        if request.url == TOKEN_URL:
            return await self.token(request)
        assert request.url == BALANCE_URL
        return await self.balance(request)

    async def token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((request.body or b"").decode()).items()}
        assert request.method == "POST"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert form["grant_type"] == "refresh_token"
        assert (form["client_id"], form["client_secret"]) == ("my-app", CLIENT_SECRET)
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        if self.refuse_with is not None:
            return self.refuse_with
        if form["refresh_token"] != self.refresh_tokens[-1]:
            return payload({"error": "refresh_token_has_expired"}, status=401)
        n = len(self.access_tokens) + 1
        self.access_tokens.append(f"access-{n:04d}")
        self.refresh_tokens.append(f"refresh-token-{n + 1:04d}")
        return payload(
            {
                "access_token": self.access_tokens[-1],
                "token_type": "bearer",
                "expires_in": self.expires_in,
                "refresh_token": self.refresh_tokens[-1],
            }
        )

    async def balance(self, request: Request) -> Response:
        token = request.headers["Authorization"].removeprefix("bearer ")
        self.api_calls.append(token)
        if self.answer_delay:
            await asyncio.sleep(self.answer_delay)
        if self.deny_everything or not self.access_tokens or token != self.access_tokens[-1]:
            return error(401, "Authorization has been denied for this request.")
        return answer(Decimal("10"))


def make_token(**kwargs: Any) -> RefreshingToken:
    return RefreshingToken("my-app", CLIENT_SECRET, FIRST_REFRESH, **kwargs)


async def test_a_token_without_an_access_token_refreshes_before_first_use() -> None:
    server = TokenServer()
    saved: list[TokenSet] = []
    token = make_token(on_refresh=saved.append)
    async with server.client(token) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal(10)
    assert server.api_calls == ["access-0001"]
    assert [t.refresh_token for t in saved] == ["refresh-token-0002"]
    assert saved[0].access_token == "access-0001"
    assert saved[0].expires_at - datetime.now(UTC) > timedelta(seconds=1190)


async def test_a_hundred_concurrent_calls_cause_one_refresh() -> None:
    server = TokenServer()
    server.refresh_delay = 0.01  # so that every call finds the refresh in progress
    token = make_token(access_token="stale", expires_at=datetime.now(UTC) - timedelta(minutes=1))
    async with server.client(token) as aw:
        results = await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(100)))
    assert results == [Decimal(10)] * 100
    assert token.refreshes == 1
    assert server.access_tokens == ["access-0001"]
    assert set(server.api_calls) == {"access-0001"}


async def test_it_refreshes_shortly_before_expiry() -> None:
    server = TokenServer()
    # Expiring in 30 s: inside the 60 s margin, so no request leaves with it.
    token = make_token(access_token="old", expires_at=datetime.now(UTC) + timedelta(seconds=30))
    async with server.client(token) as aw:
        await aw.credit_history.get_current_credit_balance()
    assert server.api_calls == ["access-0001"]


async def test_a_valid_token_is_used_as_is() -> None:
    server = TokenServer()
    server.access_tokens.append("current")
    token = make_token(access_token="current", expires_at=datetime.now(UTC) + timedelta(minutes=19))
    async with server.client(token) as aw:
        await aw.credit_history.get_current_credit_balance()
    assert server.api_calls == ["current"]
    assert token.refreshes == 0


async def test_a_401_refreshes_once_and_retries_once() -> None:
    server = TokenServer()
    # The server revoked it early: expires_at says it is still good.
    token = make_token(access_token="revoked", expires_at=datetime.now(UTC) + timedelta(minutes=19))
    async with server.client(token) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal(10)
    assert server.api_calls == ["revoked", "access-0001"]
    assert token.refreshes == 1


async def test_a_401_with_a_fresh_token_is_final() -> None:
    server = TokenServer()
    server.deny_everything = True
    token = make_token()
    async with server.client(token) as aw:
        with pytest.raises(AuthenticationError, match="Authorization has been denied"):
            await aw.credit_history.get_current_credit_balance()
    assert token.refreshes == 2  # once before first use, once after the 401, never in a loop


async def test_concurrent_401s_cause_one_refresh() -> None:
    server = TokenServer()
    server.answer_delay = 0.01  # all twenty are sent with the revoked token before any 401 returns
    token = make_token(access_token="revoked", expires_at=datetime.now(UTC) + timedelta(minutes=19))
    async with server.client(token) as aw:
        await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(20)))
    assert server.api_calls[:20] == ["revoked"] * 20
    assert token.refreshes == 1
    assert server.api_calls[20:] == ["access-0001"] * 20


async def test_the_rotated_refresh_token_is_persisted_before_the_new_access_token_is_used() -> None:
    server = TokenServer()
    persisted: list[str] = []

    async def persist(tokens: TokenSet) -> None:
        assert server.api_calls == []  # nothing has used the new access token yet
        await asyncio.sleep(0)
        persisted.append(tokens.refresh_token)

    async with server.client(make_token(on_refresh=persist)) as aw:
        await aw.credit_history.get_current_credit_balance()
    assert persisted == ["refresh-token-0002"]
    assert server.api_calls == ["access-0001"]


async def test_a_failed_save_reaches_the_caller_typed_and_the_same_tokens_are_saved_again() -> None:
    server = TokenServer()
    attempts: list[str] = []

    def flaky_save(tokens: TokenSet) -> None:
        attempts.append(tokens.refresh_token)
        if len(attempts) == 1:
            raise OSError("database is down")

    async with server.client(make_token(on_refresh=flaky_save)) as aw:
        with pytest.raises(TokenNotSavedError, match="database is down") as caught:
            await aw.credit_history.get_current_credit_balance()
        assert isinstance(caught.value.__cause__, OSError)
        assert "in memory" in str(caught.value)  # says what happened and what follows
        assert server.api_calls == []  # the unsaved token set was not used
        assert await aw.credit_history.get_current_credit_balance() == Decimal(10)
    # No second refresh: the same rotated token was handed to on_refresh again, and then used.
    assert attempts == ["refresh-token-0002", "refresh-token-0002"]
    assert server.refreshes_sent() == 1
    assert server.api_calls == ["access-0001"]


async def test_a_refused_refresh_is_an_authentication_error_with_the_servers_code() -> None:
    server = TokenServer()
    server.refuse_with = payload({"error": "refresh_token_has_expired"}, status=401)
    async with server.client(make_token()) as aw:
        with pytest.raises(AuthenticationError) as caught:
            await aw.credit_history.get_current_credit_balance()
    assert caught.value.error == "refresh_token_has_expired"
    assert caught.value.status == 401
    assert "refresh_token_has_expired" in str(caught.value)
    assert server.api_calls == []


async def test_a_token_endpoint_failure_is_typed() -> None:
    server = TokenServer()
    server.refuse_with = raw(b"<html><title>Oops</title></html>", status=500, content_type="text/html")
    async with server.client(make_token(), max_retries=0) as aw:
        with pytest.raises(ServerError, match="Oops"):
            await aw.credit_history.get_current_credit_balance()


async def test_a_refresh_is_never_sent_twice_when_its_outcome_is_unknown() -> None:
    # A refresh consumes the refresh token it sends: sending it again could lock the user out.
    def disconnect(request: Request) -> Response:
        raise aiohttp.ServerDisconnectedError()

    transport = MockTransport(disconnect)
    async with AdultWorkClient(make_token(), transport=transport) as aw:
        with pytest.raises(OutcomeUnknownError):
            await aw.credit_history.get_current_credit_balance()

    assert [request.url for request in transport.requests] == [TOKEN_URL]


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "bearer", "expires_in": 1200, "refresh_token": "r"},
        {"access_token": 5, "refresh_token": "r", "expires_in": 1200},
    ],
)
async def test_a_malformed_token_response_is_a_decode_error(body: dict[str, Any]) -> None:
    from aw_async.errors import DecodeError

    async with AdultWorkClient(make_token(), transport=MockTransport(lambda request: payload(body))) as aw:
        with pytest.raises(DecodeError, match="token response"):
            await aw.credit_history.get_current_credit_balance()


async def test_an_answer_without_a_new_refresh_token_keeps_the_old_one() -> None:
    # RFC 6749, section 6: the server MAY issue a new refresh token; when it does not, the old one
    # stays valid, and the access token of the answer is used.
    saved: list[TokenSet] = []

    def handle(request: Request) -> Response:
        if request.url == TOKEN_URL:
            return payload({"access_token": "a", "expires_in": 1200})
        return raw(b"2")

    async with AdultWorkClient(make_token(on_refresh=saved.append), transport=MockTransport(handle)) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal(2)
    assert [(t.access_token, t.refresh_token) for t in saved] == [("a", FIRST_REFRESH)]


async def test_no_secret_in_reprs_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    server = TokenServer()
    tokens: list[TokenSet] = []
    token = make_token(on_refresh=tokens.append)
    with caplog.at_level(logging.DEBUG, logger="aw_async"):
        async with server.client(token) as aw:
            await aw.credit_history.get_current_credit_balance()
            server.refuse_with = payload({"error": "invalid_grant"}, status=401)
            server.access_tokens.append("moved-on")
            with pytest.raises(AuthenticationError) as caught:
                await aw.credit_history.get_current_credit_balance()
    secrets = [CLIENT_SECRET, FIRST_REFRESH, "refresh-token-0002", "access-0001"]
    texts = [repr(token), str(token), repr(tokens[0]), str(tokens[0]), str(caught.value), repr(caught.value)]
    texts += [record.getMessage() for record in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text, (secret, text)
    assert repr(StaticToken("s3cret")) == "StaticToken(<redacted>)"


def test_naive_expiry_is_read_as_utc() -> None:
    token = make_token(access_token="a", expires_at=datetime(2030, 1, 1, 12, 0))
    assert token.expires_at == datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("missing", ["client_id", "client_secret", "refresh_token"])
def test_credentials_are_required(missing: str) -> None:
    args = {"client_id": "a", "client_secret": "b", "refresh_token": "c", missing: ""}
    with pytest.raises(ValueError, match=missing):
        RefreshingToken(**args)
