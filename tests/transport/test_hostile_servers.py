"""Hostile servers on loopback: a server that misbehaves on purpose, against a real socket, and the
promise each misbehaviour must not break (secrets, the body limit, tokens, cookies, the boundary)."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import os
import subprocess
import sys
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import attrs
import pytest
from aiohttp import web

from aw_async import AdultWorkClient, RefreshingToken, TokenSet
from aw_async._protocol import MAX_RETRY_AFTER
from aw_async.codecs import JsonCodec
from aw_async.errors import (
    ApiError,
    AuthenticationError,
    DecodeError,
    NotStartedError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
    TransportError,
)
from aw_async.sandbox import SandboxServer
from aw_async.testing import VirtualClock

from ..scripted import past_booking
from .hostile import HostileServer, compression_bomb, response
from .test_secrets import texts_of

ACCESS = "ACCESS-TOKEN-SECRET-3b1f"
REFRESH = "REFRESH-TOKEN-SECRET-9c2e"
CLIENT_SECRET = "CLIENT-SECRET-7a4d"
API_KEY = "API-KEY-SECRET-5e6b"
SECRETS = (ACCESS, REFRESH, CLIENT_SECRET, API_KEY)
USER = 7


def assert_no_secret(error: BaseException, records: list[logging.LogRecord] = ()) -> None:  # type: ignore[assignment]
    texts = texts_of(error)
    for record in records:
        texts.append(record.getMessage())
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked into: {text[:300]}"


# --- 1. secrets in the exception chain ------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(response(b"HTTP/1.1 2OO OK", body=b"{}"), id="malformed status line"),
        pytest.param(response(headers={"X-Big": "x" * 9000}, body=b"{}"), id="header over 8 KiB"),
        pytest.param(
            response(headers={"Transfer-Encoding": "chunked"}, body=b"zz\r\n{}\r\n0\r\n\r\n"),
            id="bad chunk size",
        ),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_aiohttps_own_errors_leave_no_secret_in_the_chain(
    answer: bytes, method: str, caplog: pytest.LogCaptureFixture, clock: VirtualClock
) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        HostileServer(answer) as server,
        AdultWorkClient(ACCESS, base_url=server.url, api_key=API_KEY, max_retries=1, clock=clock) as aw,
    ):
        call = (
            aw.phonechat.made_booking_details(1)
            if method == "GET"
            else aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
        )
        with pytest.raises(TransportError) as caught:
            await call
    if method == "POST":
        assert isinstance(caught.value, OutcomeUnknownError)
        assert server.count("POST") == 1
    # The chain says what aiohttp saw, redacted, without carrying aiohttp's request_info: no
    # exception of aiohttp's is in it, only a stand-in that names its type.
    cause = caught.value.__cause__
    assert cause is not None
    assert caught.value.__context__ is None or caught.value.__context__ is cause
    chain = []
    while cause is not None:
        chain.append(cause)
        assert cause.__context__ is None or cause.__context__ is cause.__cause__
        cause = cause.__cause__
    assert not any(isinstance(link, aiohttp.ClientError) for link in chain)
    assert any("aiohttp" in getattr(link, "original_type", "") for link in chain)
    assert_no_secret(caught.value, caplog.records)


# --- 2 and 12. a refused refresh, and error bodies and headers, echo secrets ----------------------


async def test_a_refused_refresh_that_echoes_secrets_shows_none(clock: VirtualClock) -> None:
    echo = {"error": f"invalid_grant {REFRESH}", "error_description": f"{REFRESH} / {CLIENT_SECRET}"}
    answer = response(
        b"HTTP/1.1 401 Unauthorized",
        {"Content-Type": "application/json", "X-Echo": REFRESH},
        json.dumps(echo).encode(),
    )
    async with HostileServer(answer) as token_server:
        token = RefreshingToken("app", CLIENT_SECRET, REFRESH, token_url=token_server.url + "/token")
        async with AdultWorkClient(token, clock=clock) as aw:
            with pytest.raises(AuthenticationError) as caught:
                await aw.credit_history.get_current_credit_balance()
    assert "invalid_grant" in str(caught.value)
    assert_no_secret(caught.value)
    assert all(REFRESH not in value for value in caught.value.headers.values())
    assert REFRESH not in str(caught.value.error)


async def test_error_bodies_and_headers_that_echo_secrets_are_redacted(clock: VirtualClock) -> None:
    body = {
        "Message": f"bad key {API_KEY}",
        "ExceptionMessage": f"token {ACCESS}",
        "ModelState": {f"request.{API_KEY}": [f"echo {ACCESS}"]},
        "InnerException": {"Message": f"inner {ACCESS}"},
    }
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.faults.add(
            "answer", status=400, body=json.dumps(body).encode(), headers={"X-Echo": f"bearer {ACCESS}"}
        )
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, api_key=API_KEY, clock=clock) as aw:
            with pytest.raises(ApiError) as caught:
                await aw.credit_history.get_current_credit_balance()
    error = caught.value
    shown = [repr(error.body), str(error.body), repr(error.headers), error.message]
    for text in shown:
        for secret in SECRETS:
            assert secret not in text
    assert error.body is not None
    assert error.body.message == "bad key ***"
    assert error.headers["X-Echo"] == "bearer ***"


# --- 3. cookies never cross users -----------------------------------------------------------------


async def test_a_cookie_set_for_one_user_is_never_sent_with_anothers_request(clock: VirtualClock) -> None:
    cookies_seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        cookies_seen.append(request.headers.get("Cookie"))
        user = request.headers["Authorization"].split()[1]
        answer = web.Response(body=b"5", content_type="application/json")
        answer.set_cookie("session", f"of-{user}", path="/")
        return answer

    app = web.Application()
    app.router.add_get("/v1/CreditHistory/GetCurrentCreditBalance", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with aiohttp.ClientSession() as shared:  # a web backend's one session
            alice = AdultWorkClient("alice", base_url=url, session=shared, clock=clock)
            bob = AdultWorkClient("bob", base_url=url, session=shared, clock=clock)
            await alice.credit_history.get_current_credit_balance()
            await bob.credit_history.get_current_credit_balance()
            await alice.credit_history.get_current_credit_balance()
            await alice.aclose()
            await bob.aclose()
            assert not shared.closed  # borrowed: still the application's
            assert len(shared.cookie_jar) == 0  # nothing was stored in the application's jar either
        async with AdultWorkClient("carol", base_url=url, clock=clock) as own:  # a session the client creates
            await own.credit_history.get_current_credit_balance()
            await own.credit_history.get_current_credit_balance()
    finally:
        await runner.cleanup()
    assert cookies_seen == [None] * 5


# --- 4. decompression bombs -----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_body_is_limited_after_decompression_while_it_is_read(
    encoding: str, clock: VirtualClock
) -> None:
    bomb = compression_bomb(encoding, 256)  # 256 MiB of digits: a JSON number, if it were let through
    assert len(bomb) < 1024 * 1024  # under a mebibyte on the wire
    answer = response(headers={"Content-Type": "application/json", "Content-Encoding": encoding}, body=bomb)
    async with (
        HostileServer(answer) as server,
        AdultWorkClient(ACCESS, base_url=server.url, clock=clock) as aw,
    ):
        tracemalloc.start()
        try:
            with pytest.raises(DecodeError, match="exceeds the limit"):
                await aw.credit_history.get_current_credit_balance()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 64 * 1024 * 1024  # the limit is 10 MiB; nothing near 256 MiB was ever held


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_the_compression_bomb_is_a_valid_stream_of_its_size(encoding: str) -> None:
    bomb = compression_bomb(encoding, 3)
    inflated = gzip.decompress(bomb) if encoding == "gzip" else zlib.decompress(bomb)
    assert inflated == b"0" * (3 * 1024 * 1024)


async def test_a_compressed_body_within_the_limit_is_read(clock: VirtualClock) -> None:
    answer = response(
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}, body=gzip.compress(b"12.50")
    )
    async with (
        HostileServer(answer) as server,
        AdultWorkClient(ACCESS, base_url=server.url, clock=clock) as aw,
    ):
        assert await aw.credit_history.get_current_credit_balance() == Decimal("12.50")


# --- 5. Retry-After with hundreds (or thousands) of digits ----------------------------------------


@pytest.mark.parametrize("digits", [400, 5000])
async def test_an_absurd_retry_after_is_a_rate_limit_error_not_a_crash(
    digits: int, clock: VirtualClock
) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.faults.add("rate_limit", retry_after="9" * digits)
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, clock=clock) as aw:
            with pytest.raises(RateLimitError) as caught:
                await aw.credit_history.get_current_credit_balance()
    assert caught.value.retry_after == MAX_RETRY_AFTER
    assert clock.sleeps == []  # beyond max_retry_after: raised, not waited out
    assert int(caught.value.retry_after)  # usable as README's web example uses it
    assert len(str(caught.value)) < 500


async def test_a_batch_survives_an_absurd_retry_after_and_reports_every_outcome(clock: VirtualClock) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.set_balance(USER, Decimal(100))
        for booking_id in (1, 2, 3):
            sandbox.add_booking(past_booking(booking_id, credits="5"), client_user_id=USER)
        sandbox.faults.add("server_error", status=503, method="POST", retry_after="9" * 700)
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, clock=clock) as aw:
            outcomes = await aw.phonechat.reschedule_made_bookings([1, 2, 3], concurrency=1)
    assert [o.booking_id for o in outcomes] == [1, 2, 3]
    assert isinstance(outcomes[0].error, ServerError)
    assert outcomes[1].ok
    assert outcomes[2].ok
    assert clock.sleeps == []  # the account's gate was not closed for the absurd Retry-After


# --- 6. a refresh is single-flight even when it fails ---------------------------------------------


def _refreshing(sandbox: SandboxServer, **kwargs: Any) -> RefreshingToken:
    sandbox.add_refresh_token(REFRESH, client_id="app", client_secret=CLIENT_SECRET, user_id=USER)
    return RefreshingToken("app", CLIENT_SECRET, REFRESH, token_url=sandbox.token_url, **kwargs)


async def test_twenty_callers_share_one_refresh_whose_answer_is_lost(clock: VirtualClock) -> None:
    async with SandboxServer() as sandbox:
        sandbox.set_balance(USER, Decimal(3))
        token = _refreshing(sandbox)
        sandbox.faults.add("reset", path="OAuth/token", when="after", times=50)
        async with AdultWorkClient(token, base_url=sandbox.url, max_retries=0, clock=clock) as aw:
            results = await asyncio.gather(
                *(aw.credit_history.get_current_credit_balance() for _ in range(20)), return_exceptions=True
            )
    assert all(isinstance(r, OutcomeUnknownError) for r in results), results
    assert sum(1 for r in sandbox.requests if r.path.lower() == "/oauth/token") == 1


async def test_a_cancelled_caller_does_not_make_the_others_refresh_again(clock: VirtualClock) -> None:
    saved: list[str] = []
    async with SandboxServer() as sandbox:
        sandbox.set_balance(USER, Decimal(3))
        token = _refreshing(sandbox, on_refresh=lambda tokens: saved.append(tokens.refresh_token))
        sandbox.faults.add("delay", path="OAuth/token", seconds=0.3)
        async with AdultWorkClient(token, base_url=sandbox.url, clock=clock) as aw:
            first = asyncio.ensure_future(aw.credit_history.get_current_credit_balance())
            await asyncio.sleep(0.05)  # the first caller's refresh is on its way
            others = [
                asyncio.ensure_future(aw.credit_history.get_current_credit_balance()) for _ in range(19)
            ]
            await asyncio.sleep(0.05)
            first.cancel()
            results = await asyncio.gather(*others)
            with pytest.raises(asyncio.CancelledError):
                await first
    assert results == [Decimal(3)] * 19
    assert sum(1 for r in sandbox.requests if r.path.lower() == "/oauth/token") == 1
    assert len(saved) == 1


# --- 7. the rotated refresh token survives an odd answer ------------------------------------------


@pytest.mark.parametrize(
    "expires_in", [pytest.param(None, id="missing"), 1200.0, 0, 10**20, "soon", -5, float("nan")]
)
async def test_the_rotated_refresh_token_is_kept_whatever_expires_in_says(
    expires_in: object, clock: VirtualClock
) -> None:
    saved: list[TokenSet] = []
    document: dict[str, Any] = {
        "access_token": "fresh-access",
        "token_type": "bearer",
        "refresh_token": "NEW",
    }
    if expires_in is not None:
        document["expires_in"] = expires_in
    async with SandboxServer() as sandbox:
        sandbox.add_token("fresh-access", user_id=USER)
        sandbox.set_balance(USER, Decimal(4))
        sandbox.faults.add("answer", path="OAuth/token", status=200, body=json.dumps(document).encode())
        token = RefreshingToken(
            "app", CLIENT_SECRET, REFRESH, token_url=sandbox.token_url, on_refresh=saved.append
        )
        async with AdultWorkClient(token, base_url=sandbox.url, clock=clock) as aw:
            assert await aw.credit_history.get_current_credit_balance() == Decimal(4)
    assert [t.refresh_token for t in saved] == ["NEW"]
    assert token.secrets()[1] == "NEW"


async def test_a_token_answer_without_an_access_token_still_hands_over_the_refresh_token(
    clock: VirtualClock,
) -> None:
    saved: list[TokenSet] = []
    async with SandboxServer() as sandbox:
        sandbox.faults.add(
            "answer", path="OAuth/token", status=200, body=b'{"refresh_token": "NEW", "expires_in": 1200}'
        )
        token = RefreshingToken(
            "app", CLIENT_SECRET, REFRESH, token_url=sandbox.token_url, on_refresh=saved.append
        )
        async with AdultWorkClient(token, base_url=sandbox.url, clock=clock) as aw:
            with pytest.raises(DecodeError, match="access_token"):
                await aw.credit_history.get_current_credit_balance()
    assert [t.refresh_token for t in saved] == ["NEW"]


# --- 8. a borrowed session's middleware never re-sends the POST -----------------------------------


async def retry_middleware(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """The shape of aiohttp's own retry example: try again on a 5xx or a connection error."""
    for _ in range(3):
        try:
            answer = await handler(request)
        except aiohttp.ClientError:
            continue
        if answer.status < 500:
            return answer
    return answer


async def test_a_borrowed_sessions_retry_middleware_never_sends_the_post_twice(clock: VirtualClock) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.set_balance(USER, Decimal(50))
        sandbox.add_booking(past_booking(1), client_user_id=USER)
        sandbox.faults.add("server_error", method="POST", status=502, when="after")
        async with aiohttp.ClientSession(middlewares=(retry_middleware,)) as session:
            aw = AdultWorkClient(ACCESS, base_url=sandbox.url, session=session, clock=clock)
            with pytest.raises(ServerError):
                await aw.phonechat.reschedule_made_booking(1)
            await aw.aclose()
    assert sum(1 for r in sandbox.requests if r.method == "POST") == 1
    assert sandbox.rescheduled(1)
    assert len(sandbox.rescheduled(1)) == 1


# --- 9. charsets that are not text ----------------------------------------------------------------


@pytest.mark.parametrize("charset", ["base64", "rot13", "hex", "zlib", "uu", "punycode", "unicode_escape"])
@pytest.mark.parametrize("where", ["content-type", "xml declaration"])
async def test_a_charset_that_is_no_text_encoding_is_a_decode_error(
    charset: str, where: str, clock: VirtualClock
) -> None:
    if where == "content-type":
        body, content_type = b"5", f"application/json; charset={charset}"
    else:
        body = (
            f'<?xml version="1.0" encoding="{charset}"?>'
            '<decimal xmlns="http://schemas.microsoft.com/2003/10/Serialization/">5</decimal>'
        ).encode()
        content_type = "application/xml"
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.faults.add("answer", status=200, body=body, content_type=content_type)
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, clock=clock) as aw:
            with pytest.raises(DecodeError, match=r"charset|character set"):
                await aw.credit_history.get_current_credit_balance()


# --- 10. short token lifetimes --------------------------------------------------------------------


async def test_a_token_that_lives_twenty_seconds_is_not_refreshed_on_every_call(clock: VirtualClock) -> None:
    async with SandboxServer() as sandbox:
        sandbox.set_balance(USER, Decimal(1))
        sandbox.add_refresh_token(
            REFRESH, client_id="app", client_secret=CLIENT_SECRET, user_id=USER, expires_in=20
        )
        token = RefreshingToken("app", CLIENT_SECRET, REFRESH, token_url=sandbox.token_url)
        async with AdultWorkClient(token, base_url=sandbox.url, clock=clock) as aw:
            await asyncio.gather(*(aw.credit_history.get_current_credit_balance() for _ in range(200)))
            for _ in range(20):
                await aw.credit_history.get_current_credit_balance()
    assert token.refreshes == 1


# --- 11. the command line shows a reschedule that happened ----------------------------------------


# A real process each (its stdout's encoding is the point): the JSON-lines one runs under -m slow.
@pytest.mark.parametrize("json_output", [False, pytest.param(True, marks=pytest.mark.slow)])
async def test_the_cli_reports_a_reschedule_whose_answer_holds_a_lone_surrogate(json_output: bool) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.set_balance(USER, Decimal(50))
        sandbox.add_booking(past_booking(4), client_user_id=USER)
        new = attrs.evolve(past_booking(4), booking_id=4001, comments="COMMENT-MARK")
        odd = JsonCodec().encode(new).replace(b"COMMENT-MARK", b"\\ud800")
        sandbox.faults.add("answer", method="POST", status=200, body=odd, when="after")
        command = [sys.executable, "-m", "aw_async", "reschedule", "4", "--base-url", sandbox.url]
        command += ["--json"] if json_output else []
        env = {**os.environ, "AW_ACCESS_TOKEN": ACCESS, "PYTHONIOENCODING": "utf-8"}
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert b"4001" in stdout
    assert len(sandbox.rescheduled(4)) == 1


# --- 13. JSON decimals with exponents -------------------------------------------------------------


async def test_a_json_decimal_with_an_exponent_is_refused_and_a_batch_still_reports(
    clock: VirtualClock,
) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.add_booking(past_booking(1), client_user_id=USER)
        sandbox.faults.add("answer", status=200, body=b"1E+1000000", path="GetCurrentCreditBalance", times=2)
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, clock=clock) as aw:
            with pytest.raises(DecodeError, match="exponent"):
                await aw.credit_history.get_current_credit_balance()
            outcomes = await aw.phonechat.reschedule_made_bookings([1])
    error = outcomes[0].error
    assert isinstance(error, NotStartedError)  # a balance that cannot be read stops the batch
    assert isinstance(error.stopped_by, DecodeError)


# --- 14. short secrets do not garble messages -----------------------------------------------------


async def test_a_two_letter_token_is_redacted_as_a_word_not_out_of_other_words(clock: VirtualClock) -> None:
    async with SandboxServer() as sandbox:
        sandbox.add_token("ab", user_id=USER)
        message = "a table about absent cabs: token ab refused"
        sandbox.faults.add("answer", status=400, body=json.dumps({"Message": message}).encode())
        async with AdultWorkClient("ab", base_url=sandbox.url, clock=clock) as aw:
            with pytest.raises(ApiError) as caught:
                await aw.credit_history.get_current_credit_balance()
    assert "a table about absent cabs: token *** refused" in str(caught.value)


# --- the boundary: only AdultWorkError leaves a call ----------------------------------------------


async def test_an_exception_the_layers_below_did_not_foresee_is_mapped_at_the_boundary(
    clock: VirtualClock,
) -> None:
    class BrokenCodec(JsonCodec):
        def decode(self, data: bytes, into: Any, *, charset: str | None = None) -> Any:
            raise KeyError(f"a plug-in's own failure with {ACCESS}")

    async with SandboxServer() as sandbox:
        sandbox.add_token(ACCESS, user_id=USER)
        sandbox.set_balance(USER, Decimal(1))
        async with AdultWorkClient(ACCESS, base_url=sandbox.url, codecs=[BrokenCodec()], clock=clock) as aw:
            with pytest.raises(DecodeError) as caught:
                await aw.credit_history.get_current_credit_balance()
    assert_no_secret(caught.value)
