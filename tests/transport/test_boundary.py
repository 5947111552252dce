"""The boundary, as a property: whatever a hostile server answers (status line, headers, body,
encoding, compression), only :class:`AdultWorkError` subclasses leave a call, a reschedule sends at
most one POST, and no secret reaches an exception chain or a log record."""

from __future__ import annotations

import asyncio
import gzip
import logging
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aw_async import AdultWorkClient
from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.errors import AdultWorkError
from aw_async.testing import VirtualClock

from ..scripted import past_booking
from .hostile import HostileServer, response
from .test_secrets import texts_of

ACCESS = "ACCESS-TOKEN-SECRET-3b1f"
API_KEY = "API-KEY-SECRET-5e6b"
SECRETS = (ACCESS, API_KEY)

_BOOKING = past_booking(1)
_GOOD_BODIES = [
    b"12.5",
    JsonCodec().encode(_BOOKING),
    XmlCodec().encode(_BOOKING),
    b'{"Message": "An error has occurred."}',
    b"<Error><Message>no</Message></Error>",
    f'{{"Message": "echo {ACCESS} {API_KEY}"}}'.encode(),
    b"<html><title>502 Bad Gateway</title></html>",
    b"",
]

statuses = st.one_of(
    st.just(b"HTTP/1.1 200 OK"),
    st.sampled_from([200, 201, 204, 301, 400, 401, 403, 404, 429, 500, 502, 503, 504, 599]).map(
        lambda code: f"HTTP/1.1 {code} Reason".encode()
    ),
    st.binary(max_size=30),
    st.text(alphabet="HTP/1.0 2O9x", max_size=20).map(str.encode),
)
bodies = st.one_of(st.sampled_from(_GOOD_BODIES), st.binary(max_size=300))
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
    st.integers(0, 10**6).map(str),
    st.just("9" * 600),
)
content_types = st.sampled_from(
    [
        "application/json",
        "application/json; charset=base64",
        "application/json; charset=utf-16",
        "application/json; charset=punycode",
        "application/xml",
        "text/xml; charset=rot13",
        "text/html",
        "application/problem+json",
        "",
        "??",
    ]
)


@st.composite
def answers(draw: st.DrawFn) -> bytes:
    body = draw(bodies)
    headers: list[tuple[str, str]] = []
    if draw(st.booleans()):
        headers.append(("Content-Type", draw(content_types)))
    encoding = draw(st.sampled_from([None, "gzip", "deflate", "br", "x-garbage"]))
    if encoding is not None:
        headers.append(("Content-Encoding", encoding))
        if encoding == "gzip" and draw(st.booleans()):
            body = gzip.compress(body)
        elif encoding == "deflate" and draw(st.booleans()):
            body = zlib.compress(body)
    for name in ("Retry-After", "Set-Cookie", "Request-Id"):
        if draw(st.booleans()):
            headers.append((name, draw(header_values)))
    length = draw(st.sampled_from(["right", "none", "shorter", "longer", "garbage"]))
    if length == "shorter":
        headers.append(("Content-Length", str(max(len(body) - 3, 0))))
    elif length == "longer":
        headers.append(("Content-Length", str(len(body) + 5)))
    elif length == "garbage":
        headers.append(("Content-Length", draw(header_values)))
    return response(draw(statuses), headers, body, content_length=length == "right")


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(record.getMessage())


async def _one_exchange(answer: bytes, format: str, post: bool) -> None:
    records = _Records()
    logger = logging.getLogger("aw_async")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        async with HostileServer(answer) as server:
            # A clock of the example's own: a retry's wait is recorded and passes at once.
            async with AdultWorkClient(
                ACCESS,
                base_url=server.url,
                api_key=API_KEY,
                format=format,
                timeout=2,
                max_retries=2,
                clock=VirtualClock(),
            ) as aw:
                try:
                    if post:
                        await aw.phonechat.reschedule_made_booking(1, check_preconditions=False)
                    else:
                        await aw.credit_history.get_current_credit_balance()
                except AdultWorkError as exc:
                    for text in texts_of(exc):
                        for secret in SECRETS:
                            assert secret not in text, text[:300]
            if post:
                assert server.count("POST") <= 1
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    for text in records.texts:
        for secret in SECRETS:
            assert secret not in text, text[:300]


@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
@given(answer=answers(), format=st.sampled_from(["json", "xml"]))
@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_only_adultwork_errors_leave_a_call_whatever_the_server_sends(
    post: bool, answer: bytes, format: str
) -> None:
    asyncio.run(_one_exchange(answer, format, post))


@pytest.mark.slow
@pytest.mark.parametrize("post", [False, True], ids=["GET", "POST"])
@given(answer=answers(), format=st.sampled_from(["json", "xml"]))
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
def test_only_adultwork_errors_leave_a_call_whatever_the_server_sends_at_length(
    post: bool, answer: bytes, format: str
) -> None:
    asyncio.run(_one_exchange(answer, format, post))
