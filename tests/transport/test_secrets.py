"""No secret in any str, repr, exception chain or log record, on every path, with DEBUG logging on."""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from aw_async import AdultWorkClient, RefreshingToken, StaticToken, TokenSet
from aw_async.errors import AdultWorkError
from aw_async.sandbox import SandboxServer
from aw_async.testing import VirtualClock

from ..scripted import past_booking

ACCESS = "ACCESS-TOKEN-SECRET-3b1f"
REFRESH = "REFRESH-TOKEN-SECRET-9c2e"
CLIENT_SECRET = "CLIENT-SECRET-7a4d"
API_KEY = "API-KEY-SECRET-5e6b"
USER = 11


def texts_of(error: BaseException) -> list[str]:
    """Everything an error can show: str, repr and args of it and of every error it chains to,
    and the formatted traceback (which prints the whole chain)."""
    texts = ["".join(traceback.format_exception(error))]
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args)]
        current = current.__cause__ or current.__context__
    return texts


async def test_no_secret_anywhere(caplog: pytest.LogCaptureFixture, clock: VirtualClock) -> None:
    errors: list[BaseException] = []
    saved: list[TokenSet] = []

    async def expect_error(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except AdultWorkError as exc:
            errors.append(exc)

    caplog.set_level(logging.DEBUG)
    async with SandboxServer() as sandbox:
        sandbox.add_refresh_token(REFRESH, client_id="app", client_secret=CLIENT_SECRET, user_id=USER)
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.set_balance(USER, Decimal(10))
        sandbox.add_booking(past_booking(1, credits="3"), client_user_id=USER)
        token = RefreshingToken(
            "app",
            CLIENT_SECRET,
            REFRESH,
            access_token=ACCESS,
            on_refresh=saved.append,
            token_url=sandbox.token_url,
        )
        async with AdultWorkClient(
            token, base_url=sandbox.url, api_key=API_KEY, timeout=0.3, max_retries=1, clock=clock
        ) as aw:
            secrets = [ACCESS, REFRESH, CLIENT_SECRET, API_KEY]
            texts = [repr(aw), str(aw), repr(token), str(token)]
            # success, with a refresh after the server revokes the access token
            await aw.phonechat.made_booking_details(1)
            del sandbox.state.tokens[ACCESS]
            await aw.phonechat.reschedule_made_booking(1)
            secrets += [saved[0].access_token, saved[0].refresh_token]
            texts += [repr(saved[0]), str(saved[0])]
            # every error path the server can produce
            for kind, options in [
                ("answer", {"status": 403, "body": b'{"Message": "denied"}'}),
                # a server that echoes what it was sent, in a JSON error body and in an HTML page
                ("answer", {"status": 400, "body": f'{{"Message": "bad apiKey {API_KEY}"}}'.encode()}),
                (
                    "answer",
                    {
                        "status": 401,
                        "body": f"<title>token {ACCESS}</title>".encode(),
                        "content_type": "text/html",
                    },
                ),
                ("answer", {"status": 404, "body": b""}),
                ("rate_limit", {"times": 5, "retry_after": "3600"}),
                ("server_error", {"status": 502, "times": 5}),
                ("reset", {"times": 10}),
                ("truncate", {"times": 5}),
                ("delay", {"seconds": 1.0, "times": 5}),
                ("answer", {"status": 200, "body": b"<html>not json</html>", "content_type": "text/html"}),
            ]:
                sandbox.faults.clear()
                sandbox.faults.add(kind, **options)  # type: ignore[arg-type]
                await expect_error(lambda: aw.credit_history.get_current_credit_balance())
                await expect_error(
                    lambda: aw.phonechat.reschedule_made_booking(1, check_preconditions=False, force=True)
                )
            sandbox.faults.clear()
            # a refused refresh: the server forgets the refresh token, then revokes the access token
            sandbox.state.refresh_tokens.clear()
            sandbox.state.tokens.clear()
            await expect_error(lambda: aw.credit_history.get_current_credit_balance())
    # a connection that cannot be made (the sandbox is gone), with the API key in the URL
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    static = StaticToken(ACCESS)
    texts.append(repr(static))
    async with AdultWorkClient(
        static, base_url=f"http://127.0.0.1:{port}", api_key=API_KEY, max_retries=0, clock=clock
    ) as aw:
        await expect_error(lambda: aw.phonechat.made_booking_details(1))
        await expect_error(
            lambda: aw.phonechat.reschedule_made_booking(1, check_preconditions=False, force=True)
        )

    kinds = {type(e).__name__ for e in errors}
    assert kinds >= {
        "PermissionDeniedError",
        "NotFoundError",
        "RateLimitError",
        "ServerError",
        "TransportError",
        "OutcomeUnknownError",
        "DecodeError",
        "AuthenticationError",
    }
    for error in errors:
        texts += texts_of(error)
    client_records = [r for r in caplog.records if r.name.startswith(("aw_async", "aiohttp.client"))]
    assert any(r.levelno == logging.DEBUG for r in client_records)
    assert any(r.levelno == logging.WARNING for r in client_records)
    for record in client_records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append("".join(traceback.format_exception(*record.exc_info)))
    for text in texts:
        for secret in secrets:
            assert secret not in text, f"a secret leaked into: {text[:300]}"


def test_reprs_of_configured_objects_show_no_secret() -> None:
    token = RefreshingToken("app", CLIENT_SECRET, REFRESH, access_token=ACCESS, expires_at=datetime.now(UTC))
    tokens = TokenSet(access_token=ACCESS, refresh_token=REFRESH, expires_at=datetime.now(UTC))
    for text in (repr(token), str(token), repr(tokens), str(tokens)):
        for secret in (ACCESS, REFRESH, CLIENT_SECRET):
            assert secret not in text
