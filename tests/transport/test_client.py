"""AdultWorkClient over an in-memory transport (aw_async.testing.MockTransport): headers, formats,
errors, retries; and over real sockets where the behaviour is aiohttp's (sessions, redirects)."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from aw_async import SANDBOX_URL, AdultWorkClient, Format, __version__
from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.errors import (
    ApiError,
    AuthenticationError,
    ClientClosedError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
)
from aw_async.models import MadeBooking
from aw_async.sandbox import SandboxServer
from aw_async.testing import MockTransport, Request, Response, VirtualClock

from ..answers import answer, error, raw, scripted
from ..conftest import fixture_bytes
from ..seed_values import SEED_JSON_BOOKING, SEED_XML_BOOKING

TOKEN = "test-access-token-5f0e"
API_KEY = "test-api-key-77c1"
DETAILS_URL = f"{SANDBOX_URL}/v1/PhoneChat/MadeBookingDetails?BookingID=2"
BALANCE_URL = f"{SANDBOX_URL}/v1/CreditHistory/GetCurrentCreditBalance"
RESCHEDULE_URL = f"{SANDBOX_URL}/v1/PhoneChat/RescheduleMadeBooking"
BOOKING_BODY = fixture_bytes("made_booking.json")

# The few tests here that need real sockets (sessions, their closing) run against the sandbox.
pytestmark = pytest.mark.sandbox(token=TOKEN, user=7, balance=3)


def client(handler: Any, clock: VirtualClock, **kwargs: Any) -> tuple[AdultWorkClient, MockTransport]:
    transport = MockTransport(handler)
    return AdultWorkClient(TOKEN, transport=transport, clock=clock, **kwargs), transport


async def test_the_headers_sent_on_a_get(clock: VirtualClock) -> None:
    aw, transport = client(lambda request: raw(BOOKING_BODY), clock)
    async with aw:
        await aw.phonechat.made_booking_details(2)
    (request,) = transport.requests
    assert (request.method, request.url, request.body) == ("GET", DETAILS_URL, None)
    assert request.headers == {
        "Authorization": f"bearer {TOKEN}",
        "Accept": "application/json",
        "User-Agent": f"aw-async/{__version__}",
    }


async def test_the_headers_and_body_sent_on_the_reschedule_post(clock: VirtualClock) -> None:
    aw, transport = client(lambda request: raw(BOOKING_BODY), clock, user_agent="my-bot/2.1")
    async with aw:
        await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    (request,) = transport.requests
    assert (request.method, request.url, request.idempotent) == ("POST", RESCHEDULE_URL, False)
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.headers["User-Agent"] == f"my-bot/2.1 aw-async/{__version__}"
    assert json.loads(request.body or b"") == {"BookingID": 1}


async def test_the_api_key_is_sent_as_a_query_parameter(clock: VirtualClock) -> None:
    aw, transport = client(lambda request: raw(b"12.5"), clock, api_key=API_KEY)
    async with aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal("12.5")
    assert transport.requests[0].url == f"{BALANCE_URL}?apiKey={API_KEY}"
    assert API_KEY not in repr(transport.requests[0])


@pytest.mark.parametrize(
    ("format", "accept"),
    [("json", "application/json"), ("xml", "application/xml"), (Format.XML, "application/xml")],
)
async def test_accept_follows_the_format(clock: VirtualClock, format: str, accept: str) -> None:
    aw, transport = client(lambda request: raw(b"1"), clock, format=format)
    async with aw:
        await aw.credit_history.get_current_credit_balance()
    assert transport.requests[0].headers["Accept"] == accept


@pytest.mark.parametrize(
    ("asked", "body", "content_type", "expected"),
    [
        ("json", "made_booking.json", "application/json; charset=utf-8", SEED_JSON_BOOKING),
        ("xml", "made_booking.xml", "application/xml; charset=utf-8", SEED_XML_BOOKING),
        # Decoded by what came, not by what was asked:
        ("json", "made_booking.xml", "text/xml", SEED_XML_BOOKING),
        ("xml", "made_booking.json", "application/json", SEED_JSON_BOOKING),
    ],
)
async def test_negotiation_in_both_formats(
    clock: VirtualClock, asked: str, body: str, content_type: str, expected: MadeBooking
) -> None:
    aw, _ = client(lambda request: raw(fixture_bytes(body), content_type=content_type), clock, format=asked)
    async with aw:
        assert await aw.phonechat.made_booking_details(2) == expected


async def test_the_group_manager_variant(clock: VirtualClock) -> None:
    aw, transport = client(lambda request: raw(BOOKING_BODY), clock)
    async with aw:
        assert await aw.phonechat.made_booking_details(2, as_user=77) == SEED_JSON_BOOKING
    assert (
        transport.requests[0].url
        == f"{SANDBOX_URL}/v1/Groups/PhoneChat/MadeBookingDetails?UserID=77&BookingID=2"
    )


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ApiError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
    ],
)
@pytest.mark.parametrize("format", ["json", "xml"])
async def test_statuses_raise_their_error_class(
    clock: VirtualClock, status: int, error_class: type[ApiError], format: str
) -> None:
    aw, _ = client(lambda request: error(status, "Nope.", format=format), clock, format=format, max_retries=0)
    async with aw:
        with pytest.raises(error_class) as caught:
            await aw.phonechat.made_booking_details(2)
    assert type(caught.value) is error_class
    assert caught.value.message == "Nope."
    assert caught.value.body is not None


OK_BOOKING = answer(SEED_JSON_BOOKING)
RETRYABLE_FAILURES: dict[str, Response | Exception] = {
    "503": error(503),
    "502 html": raw(b"<html><title>502 Bad Gateway</title></html>", status=502, content_type="text/html"),
    "disconnected": aiohttp.ServerDisconnectedError(),
    "reset": aiohttp.ClientOSError(104, "Connection reset by peer"),
    "read timeout": aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
    "timeout": TimeoutError(),
    "truncated body": aiohttp.ClientPayloadError("Response payload is not completed"),
}


@pytest.mark.parametrize("failure", list(RETRYABLE_FAILURES), ids=list(RETRYABLE_FAILURES))
async def test_a_get_is_retried_after_a_5xx_a_timeout_or_a_lost_connection(
    clock: VirtualClock, failure: str
) -> None:
    aw, transport = client(scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), clock)
    async with aw:
        assert await aw.phonechat.made_booking_details(2) == SEED_JSON_BOOKING
    assert len(transport.requests) == 2
    assert len(clock.sleeps) == 1


@pytest.mark.parametrize("failure", ["disconnected", "reset", "read timeout", "timeout", "truncated body"])
async def test_the_reschedule_post_is_never_sent_again_once_it_may_have_arrived(
    clock: VirtualClock, failure: str
) -> None:
    aw, transport = client(scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), clock)
    async with aw:
        with pytest.raises(OutcomeUnknownError) as caught:
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert len(transport.requests) == 1
    assert clock.sleeps == []
    assert "not sent again" in str(caught.value)
    assert caught.value.attempts == 1


@pytest.mark.parametrize("failure", ["503", "502 html"])
async def test_the_reschedule_post_is_not_retried_after_a_5xx(clock: VirtualClock, failure: str) -> None:
    aw, transport = client(scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), clock)
    async with aw:
        with pytest.raises(ServerError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert len(transport.requests) == 1


def connection_refused() -> aiohttp.ClientConnectorError:
    key = aiohttp.client_reqrep.ConnectionKey("api-sandbox.adultwork.com", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_failure_to_connect_is_retried_for_every_call(clock: VirtualClock, method: str) -> None:
    handler = scripted(connection_refused(), aiohttp.ConnectionTimeoutError("slow"), OK_BOOKING)
    aw, transport = client(handler, clock)
    async with aw:
        if method == "GET":
            await aw.phonechat.made_booking_details(2)
        else:
            await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert [request.method for request in transport.requests] == [method] * 3
    assert len(clock.sleeps) == 2


async def test_a_handler_may_say_a_connection_was_refused_in_plain_python(clock: VirtualClock) -> None:
    aw, transport = client(scripted(ConnectionRefusedError(), OK_BOOKING), clock)
    async with aw:
        await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert len(transport.requests) == 2  # never sent, so even the POST is tried again


async def test_a_429_is_retried_for_a_get_after_retry_after(clock: VirtualClock) -> None:
    aw, transport = client(scripted(error(429, **{"Retry-After": "7"}), OK_BOOKING), clock)
    async with aw:
        await aw.phonechat.made_booking_details(2)
    assert len(transport.requests) == 2
    assert clock.sleeps == [7.0]  # a lone waiter goes when the gate opens, no later


async def test_a_429_to_the_post_is_raised_not_sent_again(clock: VirtualClock) -> None:
    aw, transport = client(scripted(error(429, **{"Retry-After": "7"}), OK_BOOKING), clock)
    async with aw:
        with pytest.raises(RateLimitError) as caught:
            await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert caught.value.retry_after == 7.0
    assert len(transport.requests) == 1
    assert clock.sleeps == []


async def test_retry_after_as_an_http_date(clock: VirtualClock) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    aw, _ = client(scripted(error(429, **{"Retry-After": when}), answer(Decimal(1))), clock)
    async with aw:
        await aw.credit_history.get_current_credit_balance()
    assert len(clock.sleeps) == 1
    assert 25 <= clock.sleeps[0] <= 30


async def test_a_retry_after_beyond_the_cap_is_raised_not_waited(clock: VirtualClock) -> None:
    aw, transport = client(scripted(error(429, **{"Retry-After": "3600"})), clock)
    async with aw:
        with pytest.raises(RateLimitError) as caught:
            await aw.credit_history.get_current_credit_balance()
    assert caught.value.retry_after == 3600
    assert clock.sleeps == []
    assert len(transport.requests) == 1


async def test_retries_run_out(clock: VirtualClock) -> None:
    aw, transport = client(scripted(aiohttp.ServerDisconnectedError()), clock, max_retries=3)
    async with aw:
        with pytest.raises(TransportError) as caught:
            await aw.credit_history.get_current_credit_balance()
    assert type(caught.value) is TransportError
    assert caught.value.attempts == 4
    assert len(transport.requests) == 4
    assert len(clock.sleeps) == 3
    assert "after 4 tries" in str(caught.value)


async def test_the_last_5xx_is_raised_when_retries_run_out(clock: VirtualClock) -> None:
    aw, transport = client(scripted(error(503, "Down for maintenance.")), clock, max_retries=1)
    async with aw:
        with pytest.raises(ServerError, match=r"Down for maintenance\."):
            await aw.credit_history.get_current_credit_balance()
    assert len(transport.requests) == 2


async def test_a_certificate_error_is_not_retried(clock: VirtualClock) -> None:
    key = aiohttp.client_reqrep.ConnectionKey("api-sandbox.adultwork.com", 443, True, True, None, None, None)
    bad_cert = aiohttp.ClientConnectorCertificateError(key, Exception("certificate verify failed"))
    aw, transport = client(scripted(bad_cert), clock)
    async with aw:
        with pytest.raises(TransportError, match=r"certificate verify failed"):
            await aw.credit_history.get_current_credit_balance()
    assert clock.sleeps == []
    assert len(transport.requests) == 1


async def test_cancellation_passes_through_untouched(clock: VirtualClock) -> None:
    started = asyncio.Event()

    async def hang_the_first_time(request: Request) -> Response:
        if not started.is_set():
            started.set()
            await asyncio.Event().wait()
        return answer(Decimal(3))

    aw, transport = client(hang_the_first_time, clock)
    async with aw:
        task = asyncio.create_task(aw.credit_history.get_current_credit_balance())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert len(transport.requests) == 1  # cancelled, not retried
        assert await aw.credit_history.get_current_credit_balance() == Decimal(3)  # still usable


async def test_a_closed_client_sends_nothing(clock: VirtualClock) -> None:
    aw, transport = client(lambda request: raw(b"3"), clock)
    await aw.aclose()
    with pytest.raises(ClientClosedError):
        await aw.credit_history.get_current_credit_balance()
    assert transport.requests == []


async def test_a_borrowed_session_is_not_closed(sandbox: SandboxServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, session=session) as aw:
            await aw.credit_history.get_current_credit_balance()
        assert not session.closed
        async with AdultWorkClient(TOKEN, base_url=sandbox.url, session=session) as aw:  # and serves another
            await aw.credit_history.get_current_credit_balance()


async def test_an_owned_session_is_closed(sandbox: SandboxServer) -> None:
    aw = AdultWorkClient(TOKEN, base_url=sandbox.url)
    await aw.credit_history.get_current_credit_balance()
    await aw.aclose()
    with pytest.raises(RuntimeError, match="closed"):  # ClientClosedError, also a RuntimeError
        await aw.credit_history.get_current_credit_balance()
    del aw
    gc.collect()  # an unclosed session would warn here ("Unclosed client session"), and warnings fail tests


async def test_a_redirect_is_not_followed() -> None:
    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.path.endswith("GetCurrentCreditBalance"):
            raise web.HTTPFound("/elsewhere")
        return web.Response(body=b"1", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with AdultWorkClient(TOKEN, base_url=url) as aw:
            with pytest.raises(ApiError) as caught:
                await aw.credit_history.get_current_credit_balance()
    finally:
        await runner.cleanup()
    assert caught.value.status == 302
    assert seen == ["/v1/CreditHistory/GetCurrentCreditBalance"]  # the token never went elsewhere


async def test_a_client_that_never_called_closes_cleanly() -> None:
    async with AdultWorkClient(TOKEN):
        pass


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://example.com"}, "base_url"),
        ({"base_url": "not a url"}, "base_url"),
        ({"format": "yaml"}, "format"),
        ({"server_timezone": "Mars/Olympus"}, "server_timezone"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 0, "transport": MockTransport(lambda request: raw(b"1"))}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"codecs": [XmlCodec()]}, "none of the codecs serves json"),
        ({"max_rate": 0}, "max_rate"),
        ({"max_rate": float("nan")}, "max_rate"),
        (
            {"transport": MockTransport(lambda request: raw(b"1")), "trace_configs": [aiohttp.TraceConfig()]},
            "transport",
        ),
    ],
)
def test_bad_configuration_is_refused_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdultWorkClient(TOKEN, **kwargs)


async def test_trace_configs_and_a_borrowed_session_are_refused_together() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ValueError, match="borrowed session"):
            AdultWorkClient(TOKEN, session=session, trace_configs=[aiohttp.TraceConfig()])
        with pytest.raises(ValueError, match="transport"):
            AdultWorkClient(TOKEN, session=session, transport=MockTransport(lambda request: raw(b"1")))


def test_a_token_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="token must be"):
        AdultWorkClient(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        AdultWorkClient("")


class VendorJson(JsonCodec):
    media_types = ("application/vnd.adultwork+json", "application/json")


async def test_a_users_codec_sets_accept_and_decodes(clock: VirtualClock) -> None:
    handler = scripted(raw(b"299.50", content_type="application/vnd.adultwork+json"))
    aw, transport = client(handler, clock, codecs=[VendorJson(), XmlCodec()])
    async with aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal("299.50")
    assert transport.requests[0].headers["Accept"] == "application/vnd.adultwork+json"


async def test_logs_show_requests_but_no_secret(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    aw, _ = client(scripted(error(503), answer(Decimal(1))), clock, api_key=API_KEY)
    with caplog.at_level(logging.DEBUG, logger="aw_async"):
        async with aw:
            await aw.credit_history.get_current_credit_balance()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "GetCurrentCreditBalance?apiKey=***" in text
    assert "answered 503; retry 1" in text
    assert API_KEY not in text
    assert TOKEN not in text


def test_the_client_repr_shows_no_secret() -> None:
    aw = AdultWorkClient(TOKEN, api_key=API_KEY)
    assert TOKEN not in repr(aw)
    assert API_KEY not in repr(aw)
    assert "format='json'" in repr(aw)


async def test_an_aiohttp_message_quoting_the_url_is_scrubbed_from_the_chain(clock: VirtualClock) -> None:
    url = f"{BALANCE_URL}?apiKey={API_KEY}"
    # aiohttp's own wording: "Connection timeout to host <the URL, query string and all>".
    handler = scripted(aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}"))
    aw, _ = client(handler, clock, api_key=API_KEY, max_retries=1)
    async with aw:
        with pytest.raises(TransportError) as caught:
            await aw.credit_history.get_current_credit_balance()
    chain: list[BaseException] = []
    link: BaseException | None = caught.value
    while link is not None:
        chain.append(link)
        link = link.__cause__ or link.__context__
    assert len(chain) >= 2
    for item in chain:
        assert API_KEY not in str(item)
        assert API_KEY not in repr(item)
    assert "apiKey=***" in str(caught.value)


class HeldClock(VirtualClock):
    """Time that stands still: a sleeper waits until the test lets it go."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeping = asyncio.Event()
        self.go = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.sleeping.set()
        await self.go.wait()


async def test_a_retry_waiting_while_the_client_closes_opens_no_new_session(sandbox: SandboxServer) -> None:
    sandbox.faults.add("server_error", status=503, retry_after=None)
    clock = HeldClock()
    aw = AdultWorkClient(TOKEN, base_url=sandbox.url, clock=clock)
    call = asyncio.ensure_future(aw.credit_history.get_current_credit_balance())
    await clock.sleeping.wait()  # the 503 came back: the retry is waiting
    await aw.aclose()
    clock.go.set()
    with pytest.raises(ClientClosedError):
        await call
    del aw
    gc.collect()  # a session opened after aclose would warn here ("Unclosed client session")
