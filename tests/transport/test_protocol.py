"""The protocol layer, with no event loop: requests built, responses deciphered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from aw_async import __version__
from aw_async._endpoints import (
    GET_CURRENT_CREDIT_BALANCE,
    MADE_BOOKING_DETAILS,
    RESCHEDULE_MADE_BOOKING,
)
from aw_async._params import MadeBookingDetailsQuery, RescheduleMadeBookingRequest
from aw_async._protocol import (
    Request,
    RequestSettings,
    Response,
    build_request,
    decipher_response,
    parse_retry_after,
)
from aw_async.codecs._registry import BUILT_IN_CODECS
from aw_async.errors import (
    ApiError,
    AuthenticationError,
    DecodeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from aw_async.models import ErrorBody, MadeBooking

from ..conftest import fixture_bytes
from ..seed_values import SEED_JSON_BOOKING, SEED_XML_BOOKING

SETTINGS = RequestSettings(
    base_url="https://api-sandbox.adultwork.com/",
    accept="application/xml",
    user_agent=f"aw-async/{__version__}",
)
TOKEN = "tok-123456"


def details_request(**settings: str) -> Request:
    return build_request(
        MADE_BOOKING_DETAILS,
        MadeBookingDetailsQuery(booking_id=7),
        settings=RequestSettings(**{**vars_of(SETTINGS), **settings}),
        token=TOKEN,
    )


def vars_of(settings: RequestSettings) -> dict[str, str | None]:
    return {
        "base_url": settings.base_url,
        "accept": settings.accept,
        "user_agent": settings.user_agent,
        "api_key": settings.api_key,
    }


def test_a_get_carries_its_parameters_in_the_query() -> None:
    request = details_request()
    assert request.method == "GET"
    assert request.url == "https://api-sandbox.adultwork.com/v1/PhoneChat/MadeBookingDetails?BookingID=7"
    assert request.body is None
    assert request.idempotent
    assert dict(request.headers) == {
        "Authorization": f"bearer {TOKEN}",
        "Accept": "application/xml",
        "User-Agent": f"aw-async/{__version__}",
    }


def test_a_post_carries_a_json_body() -> None:
    request = build_request(
        RESCHEDULE_MADE_BOOKING, RescheduleMadeBookingRequest(booking_id=1), settings=SETTINGS, token=TOKEN
    )
    assert request.method == "POST"
    assert request.url == "https://api-sandbox.adultwork.com/v1/PhoneChat/RescheduleMadeBooking"
    assert request.headers["Content-Type"] == "application/json; charset=utf-8"
    assert request.body is not None
    assert json.loads(request.body) == {"BookingID": 1}
    assert not request.idempotent


def test_the_api_key_goes_in_the_query_and_nowhere_visible() -> None:
    request = details_request(api_key="k3y/s+cret")
    assert request.url.endswith("?BookingID=7&apiKey=k3y%2Fs%2Bcret")
    assert "k3y" not in request.display_url
    assert "k3y" not in repr(request)
    assert TOKEN not in repr(request)
    post = build_request(
        RESCHEDULE_MADE_BOOKING,
        RescheduleMadeBookingRequest(booking_id=1),
        settings=RequestSettings(**{**vars_of(SETTINGS), "api_key": "k"}),
        token=TOKEN,
    )
    assert post.url.endswith("/RescheduleMadeBooking?apiKey=k")
    assert json.loads(post.body or b"") == {"BookingID": 1}


def test_the_group_manager_variant() -> None:
    request = build_request(
        MADE_BOOKING_DETAILS,
        MadeBookingDetailsQuery(booking_id=7),
        settings=SETTINGS,
        token=TOKEN,
        as_user=42,
    )
    assert request.url == (
        "https://api-sandbox.adultwork.com/v1/Groups/PhoneChat/MadeBookingDetails?UserID=42&BookingID=7"
    )
    with pytest.raises(ValueError, match="no group-manager variant"):
        build_request(
            RESCHEDULE_MADE_BOOKING,
            RescheduleMadeBookingRequest(booking_id=1),
            settings=SETTINGS,
            token=TOKEN,
            as_user=42,
        )


def test_endpoints_declare_their_scopes() -> None:
    assert RESCHEDULE_MADE_BOOKING.scope == MADE_BOOKING_DETAILS.scope == "account_phonechat_bookings"
    assert GET_CURRENT_CREDIT_BALANCE.scope == "account_credits_history"


def respond(status: int, body: bytes, content_type: str | None, **headers: str) -> Response:
    if content_type is not None:
        headers["Content-Type"] = content_type
    return Response(status, headers, body)


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (fixture_bytes("made_booking.json"), "application/json; charset=utf-8", SEED_JSON_BOOKING),
        (fixture_bytes("made_booking.xml"), "application/xml; charset=utf-8", SEED_XML_BOOKING),
        (fixture_bytes("made_booking.xml"), "text/xml", SEED_XML_BOOKING),
        (
            fixture_bytes("made_booking.xml").decode().encode("utf-16"),
            "text/xml; charset=utf-16",
            SEED_XML_BOOKING,
        ),
    ],
)
def test_a_2xx_is_decoded_by_its_content_type_not_by_what_was_asked(
    body: bytes, content_type: str, expected: MadeBooking
) -> None:
    request = details_request(accept="application/json")
    assert decipher_response(
        MADE_BOOKING_DETAILS, request, respond(200, body, content_type), BUILT_IN_CODECS
    ) == (expected)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"299.50", "application/json"),
        (
            b'<decimal xmlns="http://schemas.microsoft.com/2003/10/Serialization/">299.50</decimal>',
            "application/xml",
        ),
    ],
)
def test_the_balance_in_both_formats(body: bytes, content_type: str) -> None:
    request = details_request()
    balance = decipher_response(
        GET_CURRENT_CREDIT_BALANCE, request, respond(200, body, content_type), BUILT_IN_CODECS
    )
    assert balance == Decimal("299.50")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"<html>challenge</html>", "text/html", "cannot decode 'text/html'"),
        (b"", "application/json", "Expecting value"),
        (b"{}", None, "no Content-Type"),
        (
            b'{"BookingID": "x"}',
            "application/json",
            "MadeBookingDetails answered 200 with invalid MadeBooking",
        ),
    ],
)
def test_a_2xx_that_cannot_be_decoded(body: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decipher_response(
            MADE_BOOKING_DETAILS, details_request(), respond(200, body, content_type), BUILT_IN_CODECS
        )


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ApiError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ApiError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
@pytest.mark.parametrize("format", ["json", "xml"])
def test_every_status_to_its_error_class(status: int, error_class: type[ApiError], format: str) -> None:
    from aw_async.codecs import JsonCodec, XmlCodec

    codec = JsonCodec() if format == "json" else XmlCodec()
    body = ErrorBody(
        message="The request is invalid.", model_state={"request.BookingID": ["Must be positive."]}
    )
    response = respond(status, codec.encode(body), codec.media_types[0])
    with pytest.raises(ApiError) as caught:
        decipher_response(MADE_BOOKING_DETAILS, details_request(), response, BUILT_IN_CODECS)
    error = caught.value
    assert type(error) is error_class
    assert error.status == status
    assert error.body == body
    assert error.message == "The request is invalid. | request.BookingID: Must be positive."
    assert error.method == "GET"
    assert "MadeBookingDetails?BookingID=7" in error.url


def test_a_403_names_the_scope_the_endpoint_needs() -> None:
    response = respond(
        403, b'{"Message":"Authorization has been denied for this request."}', "application/json"
    )
    with pytest.raises(PermissionDeniedError) as caught:
        decipher_response(GET_CURRENT_CREDIT_BALANCE, details_request(), response, BUILT_IN_CODECS)
    assert caught.value.scope == "account_credits_history"
    assert "needs the scope 'account_credits_history'" in str(caught.value)


def test_a_429_carries_retry_after() -> None:
    response = respond(429, b"", None, **{"Retry-After": "17"})
    with pytest.raises(RateLimitError) as caught:
        decipher_response(MADE_BOOKING_DETAILS, details_request(), response, BUILT_IN_CODECS)
    assert caught.value.retry_after == 17
    assert "retry after 17 s" in str(caught.value)


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>",
            "text/html",
            "502 Bad Gateway",
        ),
        (
            b"<html><body><p>Checking your browser\n  before accessing</p></body></html>",
            "text/html; charset=utf-8",
            "Checking your browser before accessing",
        ),
        (b"", None, "(empty body)"),
        (b"upstream connect error", "text/plain", "upstream connect error"),
        (b"\x00\x01binary\xff", "application/octet-stream", "binary\ufffd"),
        (
            b'{"not": "an error body", "Message": 5}',
            "application/json",
            '{"not": "an error body", "Message": 5}',
        ),
        (b"x" * 5000, "text/plain", "x" * 199 + "…"),
    ],
)
def test_bodies_that_are_not_error_bodies_give_a_short_safe_excerpt(
    body: bytes, content_type: str | None, message: str
) -> None:
    with pytest.raises(ServerError) as caught:
        decipher_response(
            MADE_BOOKING_DETAILS, details_request(), respond(502, body, content_type), BUILT_IN_CODECS
        )
    assert caught.value.body is None
    assert caught.value.message == message
    assert len(str(caught.value)) < 400


def test_a_secret_echoed_in_an_error_page_is_redacted() -> None:
    body = f"<html><title>Bad token {TOKEN}</title></html>".encode()
    with pytest.raises(ApiError) as caught:
        decipher_response(
            MADE_BOOKING_DETAILS, details_request(), respond(400, body, "text/html"), BUILT_IN_CODECS
        )
    assert TOKEN not in str(caught.value)
    assert TOKEN not in repr(caught.value)


def test_the_request_id_is_kept() -> None:
    response = respond(500, b"", None, **{"X-Request-Id": "abc-1"})
    with pytest.raises(ServerError) as caught:
        decipher_response(MADE_BOOKING_DETAILS, details_request(), response, BUILT_IN_CODECS)
    assert caught.value.request_id == "abc-1"


NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 5 ", 5.0),
        ("0", 0.0),
        ("Tue, 24 Nov 2026 12:01:30 GMT", 90.0),
        ("Tue, 24 Nov 2026 11:00:00 GMT", 0.0),  # in the past: go now
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_a_decode_error_names_the_operation_and_keeps_the_details() -> None:
    response = respond(200, b'{"BookingID": 1, "Candidate": {"UserID": "x"}}', "application/json")
    with pytest.raises(DecodeError) as caught:
        decipher_response(MADE_BOOKING_DETAILS, details_request(), response, BUILT_IN_CODECS)
    assert caught.value.message == str(caught.value)
    assert caught.value.message.startswith("MadeBookingDetails answered 200 with invalid MadeBooking at ")
    assert caught.value.path is not None
    assert isinstance(caught.value.__cause__, DecodeError)
