"""Property tests: every model survives a round trip, and no bytes make decode raise anything but
DecodeError."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.errors import DecodeError
from aw_async.models import (
    ErrorBody,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatBookingUser,
    PhoneChatMethod,
    UserBookingRequirements,
)

from ..conftest import fixture_bytes
from ..strategies import candidates, decimals, error_bodies, made_bookings

CODECS = [JsonCodec(), XmlCodec()]
INTO = [
    MadeBooking,
    PhoneChatBookingUser,
    ErrorBody,
    MadeBookingsPage,
    UserBookingRequirements,
    PhoneChatMethod,
    Decimal,
    int,
    str,
    bool,
]


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(booking=made_bookings)
def test_made_bookings_round_trip(codec: JsonCodec | XmlCodec, booking: MadeBooking) -> None:
    decoded = codec.decode(codec.encode(booking), MadeBooking)
    assert decoded == booking
    # == on datetimes compares instants; the kind (naive or aware) and the offset must survive too.
    for name in ("create_date", "session_date", "accept_by", "last_updated"):
        original, back = getattr(booking, name), getattr(decoded, name)
        assert (original is None) == (back is None)
        if original is not None:
            assert back.utcoffset() == original.utcoffset()


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(candidate=candidates)
def test_candidates_round_trip(codec: JsonCodec | XmlCodec, candidate: PhoneChatBookingUser) -> None:
    assert codec.decode(codec.encode(candidate), PhoneChatBookingUser) == candidate


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(credits=decimals)
def test_decimals_round_trip_with_their_scale(codec: JsonCodec | XmlCodec, credits: Decimal) -> None:
    back = codec.decode(codec.encode(credits), Decimal)
    assert back == credits
    if isinstance(codec, XmlCodec) or credits.as_tuple().exponent < 0:  # type: ignore[operator]
        assert back.as_tuple() == credits.as_tuple()  # JSON writes an integral 8 as 8.0


@given(error=error_bodies(xml=False))
def test_error_bodies_round_trip_in_json(error: ErrorBody) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(error), ErrorBody) == error


@given(error=error_bodies(xml=True))
def test_error_bodies_round_trip_in_xml(error: ErrorBody) -> None:
    codec = XmlCodec()
    assert codec.decode(codec.encode(error), ErrorBody) == error


def _decodes_or_refuses(codec: JsonCodec | XmlCodec, data: bytes, charset: str | None = None) -> None:
    for into in INTO:
        with contextlib.suppress(DecodeError):
            codec.decode(data, into, charset=charset)


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(data=st.binary(max_size=2048), charset=st.none() | st.sampled_from(["utf-8", "utf-16", "latin-1"]))
@example(data=b"\xef\xbb\xbf", charset=None)
@example(data=b"\xff\xfe", charset="utf-8")
@example(data=b"\x00\x00\xfe\xff", charset=None)
def test_arbitrary_bytes_raise_only_decode_error(
    codec: JsonCodec | XmlCodec, data: bytes, charset: str | None
) -> None:
    _decodes_or_refuses(codec, data, charset)


def _mutate(document: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    for position, kind, payload in edits:
        position %= max(len(document), 1)
        if kind == 0 and document:  # flip a byte
            document = document[:position] + bytes([document[position] ^ 0xFF]) + document[position + 1 :]
        elif kind <= 1:  # insert
            document = document[:position] + payload + document[position:]
        elif kind == 2:  # delete a run
            document = document[:position] + document[position + len(payload) + 1 :]
        elif kind == 3:  # truncate
            document = document[:position]
        else:  # duplicate a run
            document = document[:position] + document[position : position + 40] + document[position:]
    return document


_edits = st.lists(
    st.tuples(
        st.integers(0, 10_000),
        st.integers(0, 4),
        st.binary(max_size=8)
        | st.sampled_from([b"<", b">", b"</", b'"', b"&", b"&amp;", b'i:nil="true"', b"null", b"{", b"]"]),
    ),
    min_size=1,
    max_size=4,
)


@pytest.mark.parametrize(
    ("codec", "fixture"),
    [(CODECS[0], "made_booking.json"), (CODECS[1], "made_booking.xml")],
    ids=["json", "xml"],
)
@given(edits=_edits)
def test_mutated_valid_documents_raise_only_decode_error(
    codec: JsonCodec | XmlCodec, fixture: str, edits: list[tuple[int, int, bytes]]
) -> None:
    _decodes_or_refuses(codec, _mutate(fixture_bytes(fixture), edits))


@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_value_raises_only_decode_error(value: object) -> None:
    _decodes_or_refuses(CODECS[0], json.dumps(value).encode())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("codec", "fixture"),
    [(CODECS[0], "made_booking.json"), (CODECS[1], "made_booking.xml")],
    ids=["json", "xml"],
)
@settings(max_examples=3000)
@given(edits=_edits)
def test_mutated_valid_documents_at_length(
    codec: JsonCodec | XmlCodec, fixture: str, edits: list[tuple[int, int, bytes]]
) -> None:
    _decodes_or_refuses(codec, _mutate(fixture_bytes(fixture), edits))
