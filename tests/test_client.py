"""AdultWorkClient over scripted answers (aioresponses): headers, formats, errors, retries."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from aw_async import SANDBOX_URL, AdultWorkClient, Format, __version__
from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.errors import (
    ApiError,
    AuthenticationError,
    NotFoundError,
    OutcomeUnknownError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
)
from aw_async.models import MadeBooking

from .conftest import fixture_bytes
from .scripted import API_KEY, TOKEN, answer, error
from .seed_values import SEED_JSON_BOOKING, SEED_XML_BOOKING

DETAILS_URL = f"{SANDBOX_URL}/v1/PhoneChat/MadeBookingDetails?BookingID=2"
BALANCE_URL = f"{SANDBOX_URL}/v1/CreditHistory/GetCurrentCreditBalance"
RESCHEDULE_URL = f"{SANDBOX_URL}/v1/PhoneChat/RescheduleMadeBooking"


def calls(mocked: aioresponses, method: str, url: str) -> list[Any]:
    from yarl import URL

    return mocked.requests.get((method, URL(url)), [])


async def test_the_headers_sent_on_a_get(mock_api: aioresponses) -> None:
    mock_api.get(DETAILS_URL, body=fixture_bytes("made_booking.json"))
    async with AdultWorkClient(TOKEN) as aw:
        await aw.phonechat.made_booking_details(2)
    (call,) = calls(mock_api, "GET", DETAILS_URL)
    assert call.kwargs["headers"] == {
        "Authorization": f"bearer {TOKEN}",
        "Accept": "application/json",
        "User-Agent": f"aw-async/{__version__}",
    }
    assert call.kwargs["allow_redirects"] is False


async def test_the_headers_and_body_sent_on_the_reschedule_post(mock_api: aioresponses) -> None:
    mock_api.post(RESCHEDULE_URL, body=fixture_bytes("made_booking.json"))
    async with AdultWorkClient(TOKEN, user_agent="my-bot/2.1") as aw:
        await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    (call,) = calls(mock_api, "POST", RESCHEDULE_URL)
    assert call.kwargs["headers"]["Content-Type"] == "application/json; charset=utf-8"
    assert call.kwargs["headers"]["User-Agent"] == f"my-bot/2.1 aw-async/{__version__}"
    assert json.loads(call.kwargs["data"]) == {"BookingID": 1}


async def test_the_api_key_is_sent_as_a_query_parameter(mock_api: aioresponses) -> None:
    mock_api.get(f"{BALANCE_URL}?apiKey={API_KEY}", body=b"12.5")
    async with AdultWorkClient(TOKEN, api_key=API_KEY) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal("12.5")


@pytest.mark.parametrize(
    ("format", "accept"),
    [("json", "application/json"), ("xml", "application/xml"), (Format.XML, "application/xml")],
)
async def test_accept_follows_the_format(mock_api: aioresponses, format: str, accept: str) -> None:
    mock_api.get(BALANCE_URL, body=b"1")
    async with AdultWorkClient(TOKEN, format=format) as aw:
        await aw.credit_history.get_current_credit_balance()
    assert calls(mock_api, "GET", BALANCE_URL)[0].kwargs["headers"]["Accept"] == accept


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
    mock_api: aioresponses, asked: str, body: str, content_type: str, expected: MadeBooking
) -> None:
    mock_api.get(DETAILS_URL, body=fixture_bytes(body), headers={"Content-Type": content_type})
    async with AdultWorkClient(TOKEN, format=asked) as aw:
        assert await aw.phonechat.made_booking_details(2) == expected


async def test_the_group_manager_variant(mock_api: aioresponses) -> None:
    url = f"{SANDBOX_URL}/v1/Groups/PhoneChat/MadeBookingDetails?UserID=77&BookingID=2"
    mock_api.get(url, body=fixture_bytes("made_booking.json"))
    async with AdultWorkClient(TOKEN) as aw:
        assert await aw.phonechat.made_booking_details(2, as_user=77) == SEED_JSON_BOOKING


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
    mock_api: aioresponses, status: int, error_class: type[ApiError], format: str
) -> None:
    reply = error(status, "Nope.", format=format)
    mock_api.get(DETAILS_URL, callback=lambda url, **kw: reply, repeat=True)
    async with AdultWorkClient(TOKEN, format=format, max_retries=0) as aw:
        with pytest.raises(error_class) as caught:
            await aw.phonechat.made_booking_details(2)
    assert type(caught.value) is error_class
    assert caught.value.message == "Nope."
    assert caught.value.body is not None


def scripted(*replies: CallbackResult | Exception) -> Any:
    """A callback giving ``replies`` in turn (an exception is raised), then repeating the last."""
    remaining = list(replies)

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        reply = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return callback


OK_BOOKING = answer(SEED_JSON_BOOKING)
RETRYABLE_FAILURES = {
    "503": error(503),
    "502 html": CallbackResult(
        status=502, body=b"<html><title>502 Bad Gateway</title></html>", content_type="text/html"
    ),
    "disconnected": aiohttp.ServerDisconnectedError(),
    "reset": aiohttp.ClientOSError(104, "Connection reset by peer"),
    "read timeout": aiohttp.SocketTimeoutError("Timeout on reading data from socket"),
    "timeout": TimeoutError(),
    "truncated body": aiohttp.ClientPayloadError("Response payload is not completed"),
}


@pytest.mark.parametrize("failure", list(RETRYABLE_FAILURES), ids=list(RETRYABLE_FAILURES))
async def test_a_get_is_retried_after_a_5xx_a_timeout_or_a_lost_connection(
    mock_api: aioresponses, failure: str, sleeps: list[float]
) -> None:
    mock_api.get(DETAILS_URL, callback=scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        assert await aw.phonechat.made_booking_details(2) == SEED_JSON_BOOKING
    assert len(calls(mock_api, "GET", DETAILS_URL)) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("failure", ["disconnected", "reset", "read timeout", "timeout", "truncated body"])
async def test_the_reschedule_post_is_never_sent_again_once_it_may_have_arrived(
    mock_api: aioresponses, failure: str, sleeps: list[float]
) -> None:
    mock_api.post(RESCHEDULE_URL, callback=scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        with pytest.raises(OutcomeUnknownError) as caught:
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert len(calls(mock_api, "POST", RESCHEDULE_URL)) == 1
    assert sleeps == []
    assert "not sent again" in str(caught.value)
    assert caught.value.attempts == 1


@pytest.mark.parametrize("failure", ["503", "502 html"])
async def test_the_reschedule_post_is_not_retried_after_a_5xx(mock_api: aioresponses, failure: str) -> None:
    mock_api.post(RESCHEDULE_URL, callback=scripted(RETRYABLE_FAILURES[failure], OK_BOOKING), repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        with pytest.raises(ServerError):
            await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
    assert len(calls(mock_api, "POST", RESCHEDULE_URL)) == 1


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_failure_to_connect_is_retried_for_every_call(
    mock_api: aioresponses, method: str, sleeps: list[float]
) -> None:
    refused = aiohttp.ClientConnectorError(
        connection_key=aiohttp.client_reqrep.ConnectionKey(
            "api-sandbox.adultwork.com", 443, True, True, None, None, None
        ),
        os_error=ConnectionRefusedError(111, "Connection refused"),
    )
    url = DETAILS_URL if method == "GET" else RESCHEDULE_URL
    mock_api.add(
        url,
        method,
        callback=scripted(refused, aiohttp.ConnectionTimeoutError("slow"), OK_BOOKING),
        repeat=True,
    )
    async with AdultWorkClient(TOKEN) as aw:
        if method == "GET":
            await aw.phonechat.made_booking_details(2)
        else:
            await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert len(calls(mock_api, method, url)) == 3
    assert len(sleeps) == 2


async def test_a_429_is_retried_for_a_get_after_retry_after(
    mock_api: aioresponses, sleeps: list[float]
) -> None:
    mock_api.add(
        DETAILS_URL, "GET", callback=scripted(error(429, **{"Retry-After": "7"}), OK_BOOKING), repeat=True
    )
    async with AdultWorkClient(TOKEN) as aw:
        await aw.phonechat.made_booking_details(2)
    assert len(calls(mock_api, "GET", DETAILS_URL)) == 2
    assert sleeps == [7.0]


async def test_a_429_to_the_post_is_raised_not_sent_again(
    mock_api: aioresponses, sleeps: list[float]
) -> None:
    mock_api.add(
        RESCHEDULE_URL, "POST", callback=scripted(error(429, **{"Retry-After": "7"}), OK_BOOKING), repeat=True
    )
    async with AdultWorkClient(TOKEN) as aw:
        with pytest.raises(RateLimitError) as caught:
            await aw.phonechat.reschedule_made_booking(2, check_preconditions=False)
    assert caught.value.retry_after == 7.0
    assert len(calls(mock_api, "POST", RESCHEDULE_URL)) == 1
    assert sleeps == []


async def test_retry_after_as_an_http_date(mock_api: aioresponses, sleeps: list[float]) -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    mock_api.get(
        BALANCE_URL, callback=scripted(error(429, **{"Retry-After": when}), answer(Decimal(1))), repeat=True
    )
    async with AdultWorkClient(TOKEN) as aw:
        await aw.credit_history.get_current_credit_balance()
    assert len(sleeps) == 1
    assert 25 <= sleeps[0] <= 30


async def test_a_retry_after_beyond_the_cap_is_raised_not_waited(
    mock_api: aioresponses, sleeps: list[float]
) -> None:
    mock_api.get(BALANCE_URL, callback=scripted(error(429, **{"Retry-After": "3600"})), repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        with pytest.raises(RateLimitError) as caught:
            await aw.credit_history.get_current_credit_balance()
    assert caught.value.retry_after == 3600
    assert sleeps == []
    assert len(calls(mock_api, "GET", BALANCE_URL)) == 1


async def test_retries_run_out(mock_api: aioresponses, sleeps: list[float]) -> None:
    mock_api.get(BALANCE_URL, callback=scripted(aiohttp.ServerDisconnectedError()), repeat=True)
    async with AdultWorkClient(TOKEN, max_retries=3) as aw:
        with pytest.raises(TransportError) as caught:
            await aw.credit_history.get_current_credit_balance()
    assert type(caught.value) is TransportError
    assert caught.value.attempts == 4
    assert len(calls(mock_api, "GET", BALANCE_URL)) == 4
    assert len(sleeps) == 3
    assert "after 4 tries" in str(caught.value)


async def test_the_last_5xx_is_raised_when_retries_run_out(mock_api: aioresponses) -> None:
    mock_api.get(BALANCE_URL, callback=scripted(error(503, "Down for maintenance.")), repeat=True)
    async with AdultWorkClient(TOKEN, max_retries=1) as aw:
        with pytest.raises(ServerError, match=r"Down for maintenance\."):
            await aw.credit_history.get_current_credit_balance()
    assert len(calls(mock_api, "GET", BALANCE_URL)) == 2


async def test_a_certificate_error_is_not_retried(mock_api: aioresponses, sleeps: list[float]) -> None:
    key = aiohttp.client_reqrep.ConnectionKey("api-sandbox.adultwork.com", 443, True, True, None, None, None)
    bad_cert = aiohttp.ClientConnectorCertificateError(key, Exception("certificate verify failed"))
    mock_api.get(BALANCE_URL, exception=bad_cert, repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        with pytest.raises(TransportError, match=r"certificate verify failed"):
            await aw.credit_history.get_current_credit_balance()
    assert sleeps == []


async def test_cancellation_passes_through_untouched(mock_api: aioresponses) -> None:
    started = asyncio.Event()
    answered = 0

    async def hang_the_first_time(url: Any, **kwargs: Any) -> CallbackResult:
        # aioresponses forgets a matcher only once its callback returns, so one callback serves
        # both calls: the first hangs until cancelled, the second answers.
        nonlocal answered
        answered += 1
        if answered == 1:
            started.set()
            await asyncio.Event().wait()
        return answer(Decimal(3))

    mock_api.get(BALANCE_URL, callback=hang_the_first_time, repeat=True)
    async with AdultWorkClient(TOKEN) as aw:
        task = asyncio.create_task(aw.credit_history.get_current_credit_balance())
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert answered == 1  # cancelled, not retried
        assert await aw.credit_history.get_current_credit_balance() == Decimal(3)  # still usable


async def test_a_borrowed_session_is_not_closed(mock_api: aioresponses) -> None:
    mock_api.get(BALANCE_URL, body=b"3", repeat=True)
    async with aiohttp.ClientSession() as session:
        async with AdultWorkClient(TOKEN, session=session) as aw:
            await aw.credit_history.get_current_credit_balance()
        assert not session.closed
        async with AdultWorkClient(TOKEN, session=session) as aw:  # and can serve another client
            await aw.credit_history.get_current_credit_balance()


async def test_an_owned_session_is_closed(mock_api: aioresponses) -> None:
    mock_api.get(BALANCE_URL, body=b"3")
    aw = AdultWorkClient(TOKEN)
    await aw.credit_history.get_current_credit_balance()
    await aw.aclose()
    with pytest.raises(RuntimeError, match="closed"):  # ClientClosedError, also a RuntimeError
        await aw.credit_history.get_current_credit_balance()
    del aw
    gc.collect()  # an unclosed session would warn here ("Unclosed client session"), and warnings fail tests


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
        ({"max_retries": -1}, "max_retries"),
        ({"codecs": [XmlCodec()]}, "none of the codecs serves json"),
    ],
)
def test_bad_configuration_is_refused_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdultWorkClient(TOKEN, **kwargs)


def test_a_token_of_the_wrong_type_is_refused() -> None:
    with pytest.raises(TypeError, match="token must be"):
        AdultWorkClient(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        AdultWorkClient("")


class VendorJson(JsonCodec):
    media_types = ("application/vnd.adultwork+json", "application/json")


async def test_a_users_codec_sets_accept_and_decodes(mock_api: aioresponses) -> None:
    mock_api.get(BALANCE_URL, body=b"299.50", headers={"Content-Type": "application/vnd.adultwork+json"})
    async with AdultWorkClient(TOKEN, codecs=[VendorJson(), XmlCodec()]) as aw:
        assert await aw.credit_history.get_current_credit_balance() == Decimal("299.50")
    assert (
        calls(mock_api, "GET", BALANCE_URL)[0].kwargs["headers"]["Accept"] == "application/vnd.adultwork+json"
    )


async def test_logs_show_requests_but_no_secret(
    mock_api: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    mock_api.get(
        f"{BALANCE_URL}?apiKey={API_KEY}", callback=scripted(error(503), answer(Decimal(1))), repeat=True
    )
    with caplog.at_level(logging.DEBUG, logger="aw_async"):
        async with AdultWorkClient(TOKEN, api_key=API_KEY) as aw:
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


async def test_an_aiohttp_message_quoting_the_url_is_scrubbed_from_the_chain(mock_api: aioresponses) -> None:
    url = f"{BALANCE_URL}?apiKey={API_KEY}"
    # aiohttp's own wording: "Connection timeout to host <the URL, query string and all>".
    mock_api.get(
        url, exception=aiohttp.ConnectionTimeoutError(f"Connection timeout to host {url}"), repeat=True
    )
    async with AdultWorkClient(TOKEN, api_key=API_KEY, max_retries=1) as aw:
        with pytest.raises(TransportError) as caught:
            await aw.credit_history.get_current_credit_balance()
    chain: list[BaseException] = []
    error: BaseException | None = caught.value
    while error is not None:
        chain.append(error)
        error = error.__cause__ or error.__context__
    assert len(chain) >= 2
    for link in chain:
        assert API_KEY not in str(link)
        assert API_KEY not in repr(link)
    assert "apiKey=***" in str(caught.value)
