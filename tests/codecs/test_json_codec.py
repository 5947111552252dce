"""JsonCodec against the recorded samples and against what Json.NET can send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from aw_async.codecs import JsonCodec
from aw_async.errors import DecodeError, EncodeError
from aw_async.models import BookingStatus, CallMethod, ErrorBody, MadeBooking, PhoneChatBookingUser

from ..conftest import fixture_bytes
from ..seed_values import SEED_CANDIDATE, SEED_JSON_BOOKING

codec = JsonCodec()


def booking_json(**members: object) -> bytes:
    """The seed's JSON booking with some members replaced (a value of ... removes the member)."""
    document = json.loads(fixture_bytes("made_booking.json"))
    for name, value in members.items():
        if value is ...:
            document.pop(name, None)
        else:
            document[name] = value
    return json.dumps(document).encode()


def test_the_seed_sample_decodes_to_its_exact_values(seed_json: bytes) -> None:
    booking = codec.decode(seed_json, MadeBooking)
    assert booking == SEED_JSON_BOOKING
    assert booking.credits.as_tuple() == Decimal("8").as_tuple()
    assert booking.status is BookingStatus.PENDING
    assert booking.method is CallMethod.CALLED_BY_CANDIDATE


def test_the_verbatim_seed_sample_is_rejected_where_the_comma_is_missing() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(fixture_bytes("made_booking.verbatim.json"), MadeBooking)
    # "CancelledBy": "BookingUser" is line 16 and lacks its comma; the parser notices on line 17.
    assert (caught.value.line, caught.value.column) == (17, 5)
    assert "line 17, column 5" in str(caught.value)
    assert "delimiter" in str(caught.value)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("8", Decimal("8")),
        ("8.0", Decimal("8.0")),
        ("8.0000", Decimal("8.0000")),
        ("0.0001", Decimal("0.0001")),
        ("-3.25", Decimal("-3.25")),
        ("0.1", Decimal("0.1")),  # 0.1 is not a binary float: proof nothing went through float
        ("79228162514264337593543950335", Decimal("79228162514264337593543950335")),  # decimal.MaxValue
        ("1.0000000000000000000000000001", Decimal("1.0000000000000000000000000001")),
    ],
)
def test_decimals_are_exact_and_keep_their_scale(wire: str, expected: Decimal) -> None:
    body = booking_json(Credits=None).replace(b'"Credits": null', b'"Credits": ' + wire.encode())
    credits = codec.decode(body, MadeBooking).credits
    assert credits == expected
    assert credits.as_tuple() == expected.as_tuple()


@pytest.mark.parametrize(
    "wire",
    ["79228162514264337593543950336", "-79228162514264337593543950336", "79228162514264337593543950336.0"],
)
def test_a_decimal_one_past_the_largest_net_decimal_is_refused(wire: str) -> None:
    # 29 digits: as short as .NET's largest decimal, so length alone cannot vouch for it.
    body = booking_json(Credits=None).replace(b'"Credits": null', b'"Credits": ' + wire.encode())
    with pytest.raises(DecodeError, match=r"outside the range of \.NET's decimal") as caught:
        codec.decode(body, MadeBooking)
    assert caught.value.path == "Credits"


@pytest.mark.parametrize("wire", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_are_refused(wire: str) -> None:
    body = booking_json(Credits=None).replace(b'"Credits": null', b'"Credits": ' + wire.encode())
    with pytest.raises(DecodeError, match=wire):
        codec.decode(body, MadeBooking)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ("2018-01-25T14:32:12", datetime(2018, 1, 25, 14, 32, 12)),
        ("2018-01-25T14:32:12.4", datetime(2018, 1, 25, 14, 32, 12, 400000)),
        ("2018-01-25T14:32:12.456", datetime(2018, 1, 25, 14, 32, 12, 456000)),
        ("2018-01-25T14:32:12.456789", datetime(2018, 1, 25, 14, 32, 12, 456789)),
        # The 7th digit (100 ns) is truncated, not rounded: .9999999 stays in the same second.
        ("2018-01-25T14:32:12.4567891", datetime(2018, 1, 25, 14, 32, 12, 456789)),
        ("2018-12-31T23:59:59.9999999", datetime(2018, 12, 31, 23, 59, 59, 999999)),
        ("2018-01-25T14:32:12Z", datetime(2018, 1, 25, 14, 32, 12, tzinfo=UTC)),
        ("2018-01-25T14:32:12.5Z", datetime(2018, 1, 25, 14, 32, 12, 500000, tzinfo=UTC)),
        ("2018-07-24T09:15:30+01:00", datetime(2018, 7, 24, 9, 15, 30, tzinfo=timezone(timedelta(hours=1)))),
        (
            "2018-07-24T09:15:30.25-05:30",
            datetime(2018, 7, 24, 9, 15, 30, 250000, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("0001-01-01T00:00:00", datetime(1, 1, 1)),  # .NET's DateTime.MinValue
    ],
)
def test_datetimes_keep_their_kind(wire: str, expected: datetime) -> None:
    decoded = codec.decode(booking_json(CreateDate=wire), MadeBooking).create_date
    assert decoded == expected
    assert decoded is not None
    assert decoded.tzinfo == expected.tzinfo
    assert decoded.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    "wire",
    [
        "2018-02-30T20:00:00",  # impossible: never normalised to March
        "2018-01-25T24:00:00",
        "2018-01-25 14:32:12",  # the forms below are accepted by fromisoformat, never sent by .NET
        "2018-01-25 14:32",
        "2018-W04-4T14:32:12",
        "20180125T143212",
        "2018-01-25T14:32",
        "2018-01-25T14:32:12,5",
        "2018-01-25T14:32:12.45678912",
        "2018-01-25T14:32:12+01",
        "2018-01-25T14:32:12+0100",
        "2018-01-25T14:32:12+01:00:00",
        "2018-01-25T14:32:12.12+0100",  # a fraction must not hide a zone of the wrong shape
        "2018-01-25T14:32:12.1+01:00:00",
        "2018-01-25T14:32:12.1+01",
        "2018-01-25",
        "",
        "٢٠١٨-01-25T14:32:12",
        "2018-01-25T14:32:Z",  # shorter than the shape once the zone is taken off
        "2018-01-25T14:32:+01:00",
    ],
)
def test_datetimes_the_server_never_sends_are_errors(wire: str) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(booking_json(CreateDate=wire), MadeBooking)
    assert caught.value.path == "CreateDate"
    assert "expected a datetime like" in str(caught.value) or "impossible" in str(caught.value)


def test_null_and_absent_both_mean_none() -> None:
    absent = codec.decode(booking_json(PhoneNumber=..., Candidate=..., LastUpdated=...), MadeBooking)
    null = codec.decode(booking_json(PhoneNumber=None, Candidate=None, LastUpdated=None), MadeBooking)
    assert absent.phone_number is absent.candidate is absent.last_updated is None
    assert absent == null


def test_unknown_members_are_ignored() -> None:
    body = booking_json(SomethingNew={"nested": [1, 2]}, IsVip=True)
    assert codec.decode(body, MadeBooking) == SEED_JSON_BOOKING


def test_new_enum_values_decode_to_the_raw_value() -> None:
    booking = codec.decode(booking_json(Status="Expired", Method=4), MadeBooking)
    assert booking.status == "Expired"
    assert type(booking.status) is str
    assert booking.method == 4
    assert type(booking.method) is int


@pytest.mark.parametrize(
    ("members", "path", "reason"),
    [
        ({"BookingID": "2"}, "BookingID", "expected an integer, got str '2'"),
        ({"BookingID": True}, "BookingID", "expected an integer, got bool True"),
        ({"BookingID": 2.0}, "BookingID", "expected an integer"),
        ({"Duration": ...}, "Duration", "missing required field"),
        ({"Credits": "8.00"}, "Credits", "expected a decimal number"),
        ({"Status": 1}, "Status", "expected a status string"),
        ({"Method": "1"}, "Method", "expected an integer"),
        ({"Comments": 12}, "Comments", "expected a string or null"),
        ({"Candidate": [1]}, "Candidate", "expected a PhoneChatBookingUser object or null"),
        ({"Candidate": {**json.loads('{"UserID": "x"}')}}, "Candidate.UserID", "expected an integer"),
    ],
)
def test_wrong_types_name_the_field_path(members: dict[str, object], path: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(booking_json(**members), MadeBooking)
    assert caught.value.path == path
    assert f"at {path}: {reason}" in str(caught.value)


def test_every_problem_is_counted_in_the_message() -> None:
    with pytest.raises(DecodeError, match=r"\(and 2 more problems\)"):
        codec.decode(booking_json(BookingID="x", Duration="y", Comments=3), MadeBooking)


def test_a_root_of_the_wrong_shape_is_an_error() -> None:
    with pytest.raises(DecodeError, match="expected a MadeBooking object, got list"):
        codec.decode(b"[]", MadeBooking)


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        ("utf-8", None),
        ("utf-8-sig", None),  # a proxy's BOM
        ("utf-8-sig", "utf-8"),
        ("utf-16", None),  # UTF-16LE with a BOM, as the server writes when asked
        ("utf-16", "utf-16"),
        ("utf-16-le", "utf-16le"),
        ("latin-1", "ISO-8859-1"),
    ],
)
def test_bodies_in_each_charset(body: str, charset: str | None) -> None:
    text = booking_json(Comments="Café ☕ — naïve").decode()
    if body == "latin-1":
        text = text.replace("☕ — ", "")
    booking = codec.decode(text.encode(body), MadeBooking, charset=charset)
    assert booking.comments in ("Café ☕ — naïve", "Café naïve")


def test_invalid_utf8_says_where() -> None:
    with pytest.raises(DecodeError, match="not valid utf-8: invalid start byte at byte 13"):
        codec.decode(b'{"Message": "\xff"}', ErrorBody)


def test_an_unknown_charset_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown charset 'klingon'"):
        codec.decode(b"{}", ErrorBody, charset="klingon")


@pytest.mark.parametrize(
    ("body", "into", "expected"),
    [
        (b"299", Decimal, Decimal("299")),
        (b"299.50", Decimal, Decimal("299.50")),
        (b"299.0", Decimal, Decimal("299.0")),
        (b"  299 ", Decimal, Decimal("299")),
        (b"-12.5", Decimal, Decimal("-12.5")),
        (b"299", int, 299),
        (b'"text"', str, "text"),
        (b"true", bool, True),
    ],
)
def test_bare_scalar_roots(body: bytes, into: type, expected: object) -> None:
    value = codec.decode(body, into)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("body", "into"), [(b"299.5", int), (b'"299"', Decimal), (b"null", Decimal)])
def test_bare_scalar_roots_of_the_wrong_type(body: bytes, into: type) -> None:
    with pytest.raises(DecodeError):
        codec.decode(body, into)


def test_decoding_into_an_unsupported_type_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="cannot decode into"):
        codec.decode(b"{}", dict)


def test_error_bodies() -> None:
    body = (
        b'{"Message":"The request is invalid.","ModelState":{"request.BookingID":'
        b'["The BookingID field is required.","It must be positive."]}}'
    )
    assert codec.decode(body, ErrorBody) == ErrorBody(
        message="The request is invalid.",
        model_state={"request.BookingID": ["The BookingID field is required.", "It must be positive."]},
    )


def test_error_bodies_with_exception_details_nest() -> None:
    body = json.dumps(
        {
            "Message": "An error has occurred.",
            "ExceptionMessage": "outer",
            "ExceptionType": "System.InvalidOperationException",
            "StackTrace": None,
            "InnerException": {"Message": "An error has occurred.", "ExceptionMessage": "inner"},
        }
    ).encode()
    error = codec.decode(body, ErrorBody)
    assert error.exception_type == "System.InvalidOperationException"
    assert error.stack_trace is None
    assert error.inner == ErrorBody(message="An error has occurred.", exception_message="inner")
    assert error.model_state == {}


def test_model_state_of_the_wrong_shape() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(b'{"ModelState": {"x": "not a list"}}', ErrorBody)
    assert caught.value.path == "ModelState"


def test_encode_writes_what_json_net_writes() -> None:
    encoded = codec.encode(SEED_JSON_BOOKING).decode()
    assert encoded.startswith('{"BookingID":2,"Duration":15,"Credits":8.0,"Status":"Pending","Method":1,')
    assert '"SkypeName":null' in encoded
    assert '"CreateDate":"2018-01-25T14:32:12.456"' in encoded
    assert '"AcceptBy":"2018-01-25T14:40:00"' in encoded
    assert encoded.endswith(
        '"Candidate":{"UserID":123456,"Nickname":"BookedUser","PhoneNumber":null,"SkypeName":null,'
        '"Total":6,"Positive":7,"Neutral":0,"Negative":1,"Ratings":8,"Disputes":0}}'
    )
    # Json.NET writes decimals with a point and the member order of the sample.
    assert list(json.loads(encoded)) == list(json.loads(fixture_bytes("made_booking.json")))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("8"), "8.0"),
        (Decimal("8.0000"), "8.0000"),
        (Decimal("1E+2"), "100.0"),
        (Decimal("-0.5"), "-0.5"),
        (datetime(2018, 1, 25, 14, 32, 12, 400000, tzinfo=UTC), '"2018-01-25T14:32:12.4Z"'),
        (
            datetime(2018, 1, 25, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
            '"2018-01-25T00:00:00-05:30"',
        ),
        (datetime(1, 1, 1), '"0001-01-01T00:00:00"'),
        ('naïve "quoted"\n', '"naïve \\"quoted\\"\\n"'),
    ],
)
def test_encode_scalars(value: object, expected: str) -> None:
    assert codec.encode(value).decode() == expected


def test_error_bodies_encode_only_the_keys_they_have() -> None:
    error = ErrorBody(message="The request is invalid.", model_state={"request.BookingID": ["bad"]})
    assert codec.encode(error) == (
        b'{"Message":"The request is invalid.","ModelState":{"request.BookingID":["bad"]}}'
    )


@pytest.mark.parametrize(
    "value",
    [
        Decimal("NaN"),
        datetime(2018, 1, 1, tzinfo=timezone(timedelta(seconds=30))),
        "\ud800",
    ],
)
def test_values_json_cannot_carry_are_encode_errors(value: object) -> None:
    with pytest.raises(EncodeError):
        codec.encode(value)


def test_candidate_alone_decodes() -> None:
    body = json.dumps(json.loads(fixture_bytes("made_booking.json"))["Candidate"]).encode()
    assert codec.decode(body, PhoneChatBookingUser) == SEED_CANDIDATE


def test_size_limit() -> None:
    small = JsonCodec(max_body_bytes=100)
    with pytest.raises(DecodeError, match="exceeds the limit of 100 bytes"):
        small.decode(fixture_bytes("made_booking.json"), MadeBooking)


def test_deep_nesting_is_a_decode_error() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"[" * 100_000 + b"]" * 100_000, ErrorBody)


def test_integers_longer_than_python_allows_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"9" * 5000, int)


def test_an_unknown_member_with_an_unusual_number_does_not_spoil_the_document(seed_json: bytes) -> None:
    # Tolerant reader: a member the client does not know (a double the server adds later) may hold an
    # exponent; only a decimal member that reads one refuses it.
    from aw_async.codecs import JsonCodec as Codec
    from aw_async.models import MadeBooking as Booking

    with_extra = seed_json.replace(
        b"{", b'{"NewDouble": 1.5E+16, "Huge": 1.00000000000000000000000000000001,', 1
    )
    assert Codec().decode(with_extra, Booking) == Codec().decode(seed_json, Booking)
    with pytest.raises(DecodeError, match="without an exponent"):
        Codec().decode(seed_json.replace(b'"Credits": 8', b'"Credits": 8E+0'), Booking)
