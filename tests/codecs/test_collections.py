"""Collections in both codecs (docs/wire.md, "Collections"), the inferred shapes, and requests written
by their declarations: round trips, exact XML, error paths with the item's index."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aw_async._params import CancelMadeBookingRequest, CreateBookingRequest, MadeBookingsQuery
from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.codecs._contracts import INFERRED, PHONECHAT_NS
from aw_async.codecs._query import decode_query, encode_query
from aw_async.errors import DecodeError
from aw_async.models import (
    CallMethod,
    MadeBooking,
    MadeBookingsPage,
    PhoneChatMethod,
    UserBookingRequirements,
)

from ..seed_values import SEED_JSON_BOOKING, SEED_XML_BOOKING
from ..strategies import create_requests, made_bookings, pages, phone_chat_methods, requirements

CODECS = [JsonCodec(), XmlCodec()]
MADE = "http://schemas.datacontract.org/2004/07/API.Models.PhoneChat.Bookings.Made"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(page=pages)
def test_pages_round_trip(codec: JsonCodec | XmlCodec, page: MadeBookingsPage) -> None:
    assert codec.decode(codec.encode(page), MadeBookingsPage) == page


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(value=requirements)
def test_requirements_round_trip(codec: JsonCodec | XmlCodec, value: UserBookingRequirements) -> None:
    assert codec.decode(codec.encode(value), UserBookingRequirements) == value


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(value=phone_chat_methods)
def test_methods_round_trip(codec: JsonCodec | XmlCodec, value: PhoneChatMethod) -> None:
    assert codec.decode(codec.encode(value), PhoneChatMethod) == value


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@given(bookings=st.lists(made_bookings, min_size=1, max_size=3))
def test_a_bare_list_is_one_page(codec: JsonCodec | XmlCodec, bookings: list[MadeBooking]) -> None:
    page = codec.decode(codec.encode(bookings), MadeBookingsPage)
    assert page == MadeBookingsPage(page_count=1, page_number=1, bookings=tuple(bookings))


@given(request=create_requests)
def test_create_requests_round_trip_in_json(request: CreateBookingRequest) -> None:
    codec = JsonCodec()
    assert codec.decode(codec.encode(request), CreateBookingRequest) == request


@pytest.mark.slow
@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
@settings(max_examples=2000)
@given(page=pages, value=requirements)
def test_collections_round_trip_at_length(
    codec: JsonCodec | XmlCodec, page: MadeBookingsPage, value: UserBookingRequirements
) -> None:
    assert codec.decode(codec.encode(page), MadeBookingsPage) == page
    assert codec.decode(codec.encode(value), UserBookingRequirements) == value


def test_the_xml_writer_writes_what_datacontractserializer_writes() -> None:
    page = MadeBookingsPage(page_count=3, page_number=1, bookings_per_page=50, bookings=(SEED_XML_BOOKING,))
    text = XmlCodec().encode(page).decode()
    # Envelope members alphabetical; the items in their own namespace under a generated prefix.
    assert text.startswith(f'<MadeBookingsPage xmlns:i="{XSI}" xmlns="{PHONECHAT_NS}">')
    assert f'<Bookings xmlns:d4p1="{MADE}"><d4p1:MadeBooking><d4p1:AcceptBy>' in text
    assert text.index("</Bookings>") < text.index("<BookingsPerPage>50</BookingsPerPage>")
    assert text.endswith("<PageCount>3</PageCount><PageNumber>1</PageNumber></MadeBookingsPage>")
    empty = XmlCodec().encode(MadeBookingsPage(page_count=0, page_number=2)).decode()
    assert "<Bookings />" in empty
    bare = XmlCodec().encode([SEED_XML_BOOKING]).decode()
    assert bare.startswith(f'<ArrayOfMadeBooking xmlns:i="{XSI}" xmlns="{MADE}"><MadeBooking><AcceptBy>')


def test_json_writes_the_envelope_in_its_documented_order() -> None:
    page = MadeBookingsPage(page_count=3, page_number=1, bookings_per_page=50)
    assert JsonCodec().encode(page) == b'{"PageCount":3,"PageNumber":1,"BookingsPerPage":50,"Bookings":[]}'


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"PageCount": 1, "PageNumber": 1, "Bookings": null}', ()),
        (b'{"PageCount": 1, "PageNumber": 1}', ()),
        (b'{"PageCount": 1, "PageNumber": 1, "Bookings": []}', ()),
    ],
)
def test_empty_null_and_absent_lists_are_empty(document: bytes, expected: tuple[MadeBooking, ...]) -> None:
    assert JsonCodec().decode(document, MadeBookingsPage).bookings == expected
    xml = XmlCodec().encode(MadeBookingsPage(page_count=1, page_number=1))
    assert XmlCodec().decode(xml, MadeBookingsPage).bookings == ()
    nil = xml.replace(b"<Bookings />", b'<Bookings i:nil="true" />')
    assert XmlCodec().decode(nil, MadeBookingsPage).bookings == ()


@pytest.mark.parametrize("codec", CODECS, ids=["json", "xml"])
def test_an_error_in_a_list_names_the_item_index(codec: JsonCodec | XmlCodec) -> None:
    bookings = tuple(SEED_JSON_BOOKING for _ in range(5))
    page = MadeBookingsPage(page_count=1, page_number=1, bookings=bookings)
    data = codec.encode(page)
    marker = b'"Credits":8.0' if isinstance(codec, JsonCodec) else b"<d4p1:Credits>8</d4p1:Credits>"
    bad = b'"Credits":"x"' if isinstance(codec, JsonCodec) else b"<d4p1:Credits>x</d4p1:Credits>"
    at = [i for i in range(len(data)) if data.startswith(marker, i)][3]  # the fourth booking's credits
    data = data[:at] + bad + data[at + len(marker) :]
    with pytest.raises(DecodeError) as caught:
        codec.decode(data, MadeBookingsPage)
    assert caught.value.path == "Bookings[3].Credits"
    assert "Bookings[3].Credits" in str(caught.value)


def test_inferred_shapes_are_read_whatever_their_root_and_namespace() -> None:
    value = UserBookingRequirements(
        phone_chat_ppm=Decimal("1.50"),
        methods=(PhoneChatMethod(method=CallMethod.SKYPE, description="Skype"),),
    )
    text = XmlCodec().encode(value)
    renamed = text.replace(f'"{PHONECHAT_NS}"'.encode(), b'"urn:something-else"').replace(
        b"UserBookingRequirements", b"Requirements"
    )
    assert XmlCodec().decode(renamed, UserBookingRequirements) == value
    # ...but the documented MadeBooking items are still matched by their documented namespace.
    page = XmlCodec().encode(MadeBookingsPage(page_count=1, page_number=1, bookings=(SEED_XML_BOOKING,)))
    assert XmlCodec().decode(
        page.replace(f'"{PHONECHAT_NS}"'.encode(), b'"urn:x"'), MadeBookingsPage
    ).bookings == (SEED_XML_BOOKING,)
    wrong_items = page.replace(MADE.encode(), b"urn:not-made")
    assert XmlCodec().decode(wrong_items, MadeBookingsPage).bookings == ()


def test_every_inferred_shape_is_said_to_be_inferred_in_the_docs() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    inferred = docs.split("## What is inferred", 1)[1].split("\n## ", 1)[0]
    for model in INFERRED:
        named = "MadeBookings envelope" if model is MadeBookingsPage else model.__name__
        assert named in inferred, f"{model.__name__} is inferred but docs/api.md does not say so"
    assert JsonCodec().encode(UserBookingRequirements(phone_chat_ppm=Decimal(2))) == (
        b'{"Methods":[],"PhoneChatPPM":2.0}'
    )


def test_a_request_body_is_written_by_its_declaration() -> None:
    request = CreateBookingRequest(
        book_user_id=9,
        session_date=datetime(2026, 12, 24, 20, 30),
        duration=15,
        method=CallMethod.SKYPE,
        skype_name="me.on.skype",
        credits=Decimal("0.1"),  # not a binary float: proof nothing went through float
        accept_by=datetime(2026, 12, 24, 19, 0),
    )
    assert json.loads(JsonCodec().encode(request)) == {
        "BookUserID": 9,
        "SessionDate": "2026-12-24 20:30",
        "Duration": 15,
        "Method": 3,
        "PhoneNumber": None,
        "SkypeName": "me.on.skype",
        "Credits": 0.1,
        "AcceptBy": "2026-12-24 19:00",
        "Comments": None,
    }
    assert b'"Credits":0.1,' in JsonCodec().encode(request)
    assert JsonCodec().encode(CancelMadeBookingRequest(booking_id=3, reason="ill")) == (
        b'{"BookingID":3,"Reason":"ill"}'
    )


def test_a_query_is_written_and_read_by_its_declaration() -> None:
    query = MadeBookingsQuery(start_date=datetime(2026, 11, 1).date(), order_by="date-asc", page_number=2)
    params = encode_query(query)
    assert params == {"StartDate": "2026-11-01", "OrderBy": "date-asc", "PageNumber": "2"}
    assert decode_query({k.lower(): v for k, v in params.items()}, MadeBookingsQuery) == query
    with pytest.raises(DecodeError, match="StartDate"):
        decode_query({"StartDate": "2026-02-30"}, MadeBookingsQuery)
