"""The sandbox over real HTTP: what it answers, byte for byte, to clients that are not ours."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import BookingStatus, ErrorBody, MadeBooking
from aw_async.sandbox import SandboxServer

from ..scripted import past_booking

TOKEN = "sandbox-test-token"
USER = 7
LONDON = ZoneInfo("Europe/London")


def seed(server: SandboxServer) -> None:
    server.add_token("balance-only", user_id=USER, scopes=["account_credits_history"])
    server.add_booking(past_booking(1, credits="8"), client_user_id=USER)
    server.add_booking(past_booking(2, credits="99"), client_user_id=USER)
    server.add_booking(
        past_booking(3, session_date=datetime.now(LONDON).replace(tzinfo=None) + timedelta(hours=1)),
        client_user_id=USER,
    )
    server.add_booking(past_booking(4), client_user_id=8)


pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, group_members=[8], balance="30.00", seed=seed)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get(
    http: aiohttp.ClientSession, url: str, *, token: str | None = TOKEN, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    if token is not None:
        headers["Authorization"] = f"bearer {token}"
    async with http.get(url, headers=headers) as response:
        return response.status, dict(response.headers), await response.read()


async def post(http: aiohttp.ClientSession, url: str, body: bytes, **headers: str) -> tuple[int, bytes]:
    headers = {"Authorization": f"bearer {TOKEN}", "Content-Type": "application/json", **headers}
    async with http.post(url, data=body, headers=headers) as response:
        return response.status, await response.read()


async def test_it_listens_on_loopback_on_a_free_port(sandbox: SandboxServer) -> None:
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert sandbox.port > 0


async def test_no_token_or_an_unknown_one_is_a_401_with_web_apis_body(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    url = f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance"
    for token in (None, "wrong"):
        status, headers, body = await get(http, url, token=token)
        assert status == 401
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert (
            JsonCodec().decode(body, ErrorBody).message == "Authorization has been denied for this request."
        )


async def test_a_token_without_the_scope_is_a_403(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await get(
        http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=1", token="balance-only"
    )
    assert status == 403
    status, _, body = await get(
        http, f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance", token="balance-only"
    )
    assert (status, body) == (200, b"30.00")


@pytest.mark.parametrize(
    ("accept", "content_type", "codec"),
    [
        (None, "application/json; charset=utf-8", JsonCodec()),
        ("application/json", "application/json; charset=utf-8", JsonCodec()),
        ("application/xml", "application/xml; charset=utf-8", XmlCodec()),
        ("text/xml", "text/xml; charset=utf-8", XmlCodec()),
        ("text/html, application/xml;q=0.9, */*;q=0.8", "application/xml; charset=utf-8", XmlCodec()),
        ("application/json;q=0.5, application/xml", "application/xml; charset=utf-8", XmlCodec()),
        ("image/png", "application/json; charset=utf-8", JsonCodec()),
    ],
)
async def test_the_format_follows_accept(
    sandbox: SandboxServer, http: aiohttp.ClientSession, accept: str | None, content_type: str, codec: object
) -> None:
    headers = {"Accept": accept} if accept else {}
    status, response_headers, body = await get(
        http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=1", **headers
    )
    assert status == 200
    assert response_headers["Content-Type"] == content_type
    assert codec.decode(body, MadeBooking) == sandbox.get_booking(1)  # type: ignore[attr-defined]


@pytest.mark.parametrize("accept", [None, "*/*", "image/png"])
async def test_a_request_that_names_no_format_it_serves_gets_the_default_one(
    sandbox: SandboxServer, http: aiohttp.ClientSession, accept: str | None
) -> None:
    sandbox.default_format = "xml"  # aw-async sandbox --format xml
    headers = {"Accept": accept} if accept else {}
    url = f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=1"
    status, response_headers, body = await get(http, url, **headers)
    assert status == 200
    assert response_headers["Content-Type"] == "application/xml; charset=utf-8"
    assert XmlCodec().decode(body, MadeBooking) == sandbox.get_booking(1)
    _, asked, _ = await get(http, url, Accept="application/json")
    assert asked["Content-Type"] == "application/json; charset=utf-8"  # what is asked for still wins


async def test_accept_charset_utf16(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    _status, headers, body = await get(
        http,
        f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance",
        Accept="application/xml",
        **{"Accept-Charset": "utf-16"},
    )
    assert headers["Content-Type"] == "application/xml; charset=utf-16"
    assert body.startswith(b"\xff\xfe<\x00d\x00e\x00c\x00")  # UTF-16LE with a BOM, as .NET writes it
    assert XmlCodec().decode(body, Decimal, charset="utf-16") == Decimal("30.00")


async def test_routing_is_case_insensitive_and_unknown_routes_are_501(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await get(http, f"{sandbox.url}/v1/phonechat/madebookingdetails?BookingID=1")
    assert status == 200
    status, _, body = await get(http, f"{sandbox.url}/v1/PhoneChat/Nothing")
    assert status == 501  # an operation the sandbox does not emulate: never another one's behaviour
    assert "does not emulate" in (JsonCodec().decode(body, ErrorBody).message or "")
    status, _, _ = await get(http, f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking")
    assert status == 405


async def test_a_booking_of_another_user_is_not_found(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    status, _, _ = await get(http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=4")
    assert status == 404


async def test_the_group_manager_variant(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    base = f"{sandbox.url}/v1/Groups/PhoneChat/MadeBookingDetails"
    status, _, _ = await get(http, f"{base}?UserID=8&BookingID=4")
    assert status == 200
    status, _, _ = await get(http, f"{base}?UserID=9&BookingID=4")
    assert status == 403


async def test_bad_parameters_are_400_with_model_state(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    status, _, body = await get(http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=abc")
    assert status == 400
    assert JsonCodec().decode(body, ErrorBody).model_state == {
        "BookingID": ["The value 'abc' is not valid for BookingID."]
    }
    status, body = await post(http, f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking", b"{}")
    assert status == 400
    assert "request.BookingID" in JsonCodec().decode(body, ErrorBody).model_state


async def test_a_reschedule_creates_a_new_booking_and_spends_credits(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    before = datetime.now(LONDON).replace(tzinfo=None)
    status, body = await post(http, f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking", b'{"BookingID": 1}')
    assert status == 200
    new = JsonCodec().decode(body, MadeBooking)
    original = sandbox.get_booking(1)
    assert original is not None
    assert new.booking_id not in (1, 2, 3, 4)
    assert new.status is BookingStatus.PENDING
    assert new.session_date is not None
    assert new.session_date.tzinfo is None  # server-local, as the real server writes it
    assert (
        timedelta(minutes=5) - timedelta(seconds=2)
        <= new.session_date - before
        <= timedelta(minutes=10, seconds=2)
    )
    assert (new.credits, new.duration, new.method, new.candidate) == (
        original.credits,
        original.duration,
        original.method,
        original.candidate,
    )
    assert sandbox.get_booking(new.booking_id) == new
    assert sandbox.get_balance(USER) == Decimal("22.00")
    assert sandbox.rescheduled(1) == [new.booking_id]


@pytest.mark.parametrize(
    ("booking_id", "status", "message"),
    [
        (2, 400, "Insufficient credits: 99 needed, 30.00 available."),
        (3, 400, "The SessionDate of this booking has not passed yet."),
        (404, 404, None),
    ],
)
async def test_refused_reschedules_spend_nothing(
    sandbox: SandboxServer, http: aiohttp.ClientSession, booking_id: int, status: int, message: str | None
) -> None:
    got, body = await post(
        http,
        f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking",
        f'{{"BookingID": {booking_id}}}'.encode(),
        Accept="application/xml",
    )
    assert got == status
    error = XmlCodec().decode(body, ErrorBody)
    if message:
        assert error.model_state == {"request.BookingID": [message]}
    assert sandbox.get_balance(USER) == Decimal("30.00")


async def test_requests_are_recorded(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    await get(http, f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance?apiKey=k")
    (seen,) = sandbox.requests
    assert (seen.method, seen.path, seen.query) == (
        "GET",
        "/v1/CreditHistory/GetCurrentCreditBalance",
        "apiKey=k",
    )


# --- faults ------------------------------------------------------------------------------------------


async def test_fault_rate_limit(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    fault = sandbox.faults.add("rate_limit", retry_after="3", times=2)
    url = f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance"
    for _ in range(2):
        status, headers, _ = await get(http, url)
        assert (status, headers["Retry-After"]) == (429, "3")
    status, _, _ = await get(http, url)
    assert status == 200
    assert fault.hits == 2


async def test_fault_server_error_with_html(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    sandbox.faults.add("server_error", status=502)
    status, headers, body = await get(http, f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance")
    assert status == 502
    assert headers["Content-Type"].startswith("text/html")
    assert b"<title>502 Bad Gateway</title>" in body


async def test_fault_reset(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    # aiohttp itself tries an idempotent request once more after a reset, so reset both tries.
    fault = sandbox.faults.add("reset", times=2)
    with pytest.raises(aiohttp.ClientOSError):
        await get(http, f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance")
    assert fault.hits == 2


async def test_fault_reset_after_processing_still_spends(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.add("reset", method="POST", when="after")
    with pytest.raises(aiohttp.ClientOSError):
        await post(http, f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking", b'{"BookingID": 1}')
    assert sandbox.get_balance(USER) == Decimal("22.00")  # it happened; the client cannot know


async def test_fault_truncated_body(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    sandbox.faults.add("truncate")
    with pytest.raises(aiohttp.ClientPayloadError):
        await get(http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=1")


async def test_fault_latency_and_slow_body_still_answer(
    sandbox: SandboxServer, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.latency = 0.01
    sandbox.faults.add("slow_body", seconds=0.01)
    status, _, body = await get(http, f"{sandbox.url}/v1/PhoneChat/MadeBookingDetails?BookingID=1")
    assert status == 200
    assert JsonCodec().decode(body, MadeBooking) == sandbox.get_booking(1)


async def test_faults_match_method_and_path(sandbox: SandboxServer, http: aiohttp.ClientSession) -> None:
    sandbox.faults.add("server_error", method="POST", path="reschedulemadebooking")
    status, _, _ = await get(http, f"{sandbox.url}/v1/CreditHistory/GetCurrentCreditBalance")
    assert status == 200
    status, _ = await post(http, f"{sandbox.url}/v1/PhoneChat/RescheduleMadeBooking", b'{"BookingID": 1}')
    assert status == 500


def test_an_unknown_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault 'gremlins'"):
        SandboxServer().faults.add("gremlins")  # type: ignore[arg-type]
