"""XmlCodec against the recorded samples and against what DataContractSerializer can send."""

from __future__ import annotations

import codecs
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from lxml import etree

from aw_async.codecs import XmlCodec
from aw_async.errors import DecodeError, EncodeError
from aw_async.models import BookingStatus, CallMethod, ErrorBody, MadeBooking, PhoneChatBookingUser

from ..conftest import fixture_bytes
from ..seed_values import SEED_CANDIDATE, SEED_JSON_BOOKING, SEED_XML_BOOKING

codec = XmlCodec()
MADE = "http://schemas.datacontract.org/2004/07/API.Models.PhoneChat.Bookings.Made"
BOOKINGS = "http://schemas.datacontract.org/2004/07/API.Models.PhoneChat.Bookings"
PROFILE = "http://schemas.datacontract.org/2004/07/API.Models.Profile"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SERIALIZATION = "http://schemas.microsoft.com/2003/10/Serialization/"


def seed_text() -> str:
    return fixture_bytes("made_booking.xml").decode()


def with_member(text: str, member: str, replacement: str) -> str:
    """The seed with the element ``<member>...</member>`` (or its nil form) replaced."""
    start = text.index(f"<{member}")
    end = text.index(">", start) + 1
    if not text[start:end].endswith("/>"):
        end = text.index(f"</{member}>", start) + len(f"</{member}>")
    return text[:start] + replacement + text[end:]


def test_the_seed_sample_decodes_to_its_exact_values(seed_xml: bytes) -> None:
    booking = codec.decode(seed_xml, MadeBooking)
    assert booking == SEED_XML_BOOKING
    assert booking.credits.as_tuple() == Decimal("8.0000").as_tuple()
    assert booking.status is BookingStatus.PENDING
    assert booking.method is CallMethod.CALLED_BY_CANDIDATE


def test_the_verbatim_seed_sample_is_rejected_saying_where() -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(fixture_bytes("made_booking.verbatim.xml"), MadeBooking)
    # The unclosed <ActionClient> swallows the rest; libxml2 notices at the root's end tag.
    assert (caught.value.line, caught.value.column) == (33, 15)
    assert "line 33, column 15" in str(caught.value)
    assert "tag mismatch" in str(caught.value)


def test_encode_writes_what_datacontractserializer_writes() -> None:
    # The seed sample is indented; DataContractSerializer writes the same document without the
    # indentation, which is what encode must give.
    # Compared canonically (C14N), then the spellings C14N would hide are checked as bytes.
    compact = etree.fromstring(fixture_bytes("made_booking.xml"), etree.XMLParser(remove_blank_text=True))
    encoded = codec.encode(SEED_XML_BOOKING)
    assert etree.tostring(etree.fromstring(encoded), method="c14n") == etree.tostring(compact, method="c14n")
    assert encoded.startswith(f'<MadeBooking xmlns:i="{XSI}" xmlns="{MADE}"><AcceptBy>'.encode())
    assert f'<Candidate xmlns:d4p1="{BOOKINGS}"><Disputes xmlns="{PROFILE}">0</Disputes>'.encode() in encoded
    assert b'<d4p1:PhoneNumber i:nil="true" />' in encoded


def test_elements_are_matched_by_namespace_never_by_prefix(seed_xml: bytes) -> None:
    renamed = (
        seed_text()
        .replace("xmlns:d4p1=", "xmlns:zz9=")
        .replace("d4p1:", "zz9:")
        .replace('xmlns:i="', 'xmlns:nul="')
        .replace("i:nil", "nul:nil")
    )
    assert codec.decode(renamed.encode(), MadeBooking) == SEED_XML_BOOKING
    # The default namespace redeclared on each child instead of a prefix, as docs/wire.md allows:
    redeclared = re.sub(r"<d4p1:(\w+)", rf'<\1 xmlns="{BOOKINGS}"', seed_text())
    redeclared = re.sub(r"</d4p1:(\w+)>", r"</\1>", redeclared)
    assert "d4p1:" not in redeclared.replace("xmlns:d4p1", "")
    assert codec.decode(redeclared.encode(), MadeBooking) == SEED_XML_BOOKING


def test_a_member_in_the_wrong_namespace_is_not_that_member() -> None:
    # Candidate's counters live in API.Models.Profile; in another namespace they are unknown
    # elements, so the required member is missing.
    wrong = seed_text().replace(f'<Total xmlns="{PROFILE}">', f'<Total xmlns="{BOOKINGS}X">')
    with pytest.raises(DecodeError) as caught:
        codec.decode(wrong.encode(), MadeBooking)
    assert caught.value.path == "Candidate.Total"
    assert "missing required field" in str(caught.value)


@pytest.mark.parametrize(
    ("root", "message"),
    [
        (f'<MadeBookings xmlns="{MADE}"></MadeBookings>', "found <MadeBookings> in namespace"),
        (f'<MadeBooking xmlns="{BOOKINGS}"></MadeBooking>', f"in namespace '{BOOKINGS}'"),
        ("<MadeBooking></MadeBooking>", "found <MadeBooking> in no namespace"),
        ("<Error><Message>x</Message></Error>", "found <Error> in no namespace"),
    ],
)
def test_the_root_is_checked_by_name_and_namespace(root: str, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(root.encode(), MadeBooking)
    assert f"expected root element <MadeBooking> in namespace '{MADE}'" in str(caught.value)
    assert message in str(caught.value)


def test_nil_absent_and_empty() -> None:
    text = with_member(seed_text(), "Comments", "<Comments></Comments>")
    text = with_member(text, "CancelledBy", "<CancelledBy/>")
    text = with_member(text, "PhoneNumber", '<PhoneNumber i:nil="true"/>')
    text = with_member(text, "CancelledReason", "")
    text = with_member(text, "Candidate", '<Candidate i:nil="true" />')
    booking = codec.decode(text.encode(), MadeBooking)
    assert booking.comments == ""  # empty without i:nil is the empty string (docs/wire.md)
    assert booking.cancelled_by == ""
    assert booking.phone_number is None
    assert booking.cancelled_reason is None
    assert booking.candidate is None


def test_nil_is_read_by_namespace_and_in_both_spellings() -> None:
    text = with_member(seed_text(), "Comments", f'<Comments xmlns:x="{XSI}" x:nil="1" />')
    assert codec.decode(text.encode(), MadeBooking).comments is None
    # nil in some other namespace is just an attribute
    text = with_member(seed_text(), "Comments", '<Comments xmlns:x="urn:other" x:nil="true" />')
    assert codec.decode(text.encode(), MadeBooking).comments == ""


def test_unknown_elements_are_ignored_and_order_does_not_matter() -> None:
    root = etree.fromstring(fixture_bytes("made_booking.xml"))
    children = list(root)
    for child in children:
        root.remove(child)
    extra = etree.SubElement(root, f"{{{MADE}}}IsVip")
    extra.text = "true"
    for child in reversed(children):
        root.append(child)
    etree.SubElement(root, "{urn:elsewhere}BookingID").text = "not even a number"
    assert codec.decode(etree.tostring(root), MadeBooking) == SEED_XML_BOOKING


def test_comments_and_processing_instructions_between_members_are_ignored() -> None:
    text = seed_text().replace("<BookingID>", "<!-- note --><?pi x?><BookingID>")
    text = text.replace("<d4p1:Nickname>", "<!-- in Candidate --><d4p1:Nickname>")
    assert codec.decode(text.encode(), MadeBooking) == SEED_XML_BOOKING
    error = b"<Error><ModelState><!-- c --><?pi?><k>v</k></ModelState></Error>"
    assert codec.decode(error, ErrorBody).model_state == {"k": ["v"]}


def test_a_comment_inside_a_value_is_mixed_content() -> None:
    text = with_member(seed_text(), "Comments", "<Comments>a<!-- c -->b</Comments>")
    with pytest.raises(DecodeError, match="Comments: expected text, found elements"):
        codec.decode(text.encode(), MadeBooking)


def test_new_enum_values_decode_to_the_raw_value() -> None:
    text = with_member(seed_text(), "Status", "<Status>Expired</Status>")
    text = with_member(text, "Method", "<Method>4</Method>")
    booking = codec.decode(text.encode(), MadeBooking)
    assert (booking.status, type(booking.status)) == ("Expired", str)
    assert (booking.method, type(booking.method)) == (4, int)


@pytest.mark.parametrize(
    ("member", "replacement", "path", "reason"),
    [
        ("BookingID", "<BookingID>two</BookingID>", "BookingID", "expected an integer, got str 'two'"),
        ("BookingID", "<BookingID> 2</BookingID>", "BookingID", "expected an integer"),
        ("BookingID", "<BookingID>1_000</BookingID>", "BookingID", "expected an integer"),
        ("BookingID", "<BookingID>٢</BookingID>", "BookingID", "expected an integer"),
        ("BookingID", "<BookingID>2<b/></BookingID>", "BookingID", "expected text, found elements"),
        ("BookingID", "", "BookingID", "missing required field"),
        ("BookingID", '<BookingID i:nil="true" />', "BookingID", "expected an integer, got NoneType"),
        ("Credits", "<Credits>8,50</Credits>", "Credits", "expected a decimal like 8.50"),
        ("Credits", "<Credits>1E+2</Credits>", "Credits", "expected a decimal"),
        ("Credits", "<Credits>NaN</Credits>", "Credits", "expected a decimal"),
        ("Credits", "<Credits></Credits>", "Credits", "expected a decimal"),
        (
            "SessionDate",
            "<SessionDate>2018-02-30T20:00:00</SessionDate>",
            "SessionDate",
            "impossible datetime",
        ),
        ("SessionDate", "<SessionDate>2018-01-25 14:32</SessionDate>", "SessionDate", "expected a datetime"),
        ("Candidate", "<Candidate>someone</Candidate>", "Candidate", "expected member elements"),
    ],
)
def test_wrong_values_name_the_field_path(member: str, replacement: str, path: str, reason: str) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(with_member(seed_text(), member, replacement).encode(), MadeBooking)
    assert caught.value.path == path
    assert reason in str(caught.value)


def test_a_nested_error_names_the_nested_path() -> None:
    text = seed_text().replace("<d4p1:UserID>123456<", "<d4p1:UserID>12x<")
    with pytest.raises(DecodeError) as caught:
        codec.decode(text.encode(), MadeBooking)
    assert caught.value.path == "Candidate.UserID"
    assert str(caught.value).startswith("invalid MadeBooking at Candidate.UserID: expected an integer")


def test_a_member_twice_is_an_error() -> None:
    text = seed_text().replace("<BookingID>2</BookingID>", "<BookingID>2</BookingID><BookingID>3</BookingID>")
    with pytest.raises(DecodeError, match="BookingID: the element appears twice"):
        codec.decode(text.encode(), MadeBooking)


def test_text_escapes_and_raw_quotes_and_line_feeds() -> None:
    text = with_member(
        seed_text(), "Comments", "<Comments>a &amp; b &lt;c&gt; \"q\" 'a'\nnext&#xD;line</Comments>"
    )
    assert codec.decode(text.encode(), MadeBooking).comments == "a & b <c> \"q\" 'a'\nnext\rline"


def test_crlf_indented_output_decodes(seed_xml: bytes) -> None:
    assert codec.decode(seed_xml.replace(b"\n", b"\r\n"), MadeBooking) == SEED_XML_BOOKING


@pytest.mark.parametrize(
    ("encode", "charset"),
    [
        (lambda t: t.encode("utf-8"), None),
        (lambda t: t.encode("utf-8"), "utf-8"),
        (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), None),  # a proxy's BOM
        (lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), "utf-8"),
        (lambda t: t.encode("utf-16"), None),  # what the server sends for Accept-Charset: utf-16
        (lambda t: t.encode("utf-16"), "utf-16"),
        (lambda t: t.encode("utf-16"), "utf-8"),  # the BOM outranks a wrong header
        (lambda t: t.encode("utf-16-le"), "utf-16le"),
        (lambda t: t.encode("utf-16-le"), None),  # no BOM, no charset: XML 1.0 Appendix F
        (lambda t: t.encode("utf-16-be"), None),
        (lambda t: codecs.BOM_UTF32_LE + t.encode("utf-32-le"), None),
        (lambda t: ('<?xml version="1.0" encoding="ISO-8859-1"?>' + t).encode("latin-1"), None),
        (lambda t: ('<?xml version="1.0" encoding="utf-16"?>' + t).encode("utf-16"), None),
    ],
)
def test_bodies_in_each_encoding(encode: object, charset: str | None) -> None:
    text = with_member(seed_text(), "Comments", "<Comments>Café naïve</Comments>")
    booking = codec.decode(encode(text), MadeBooking, charset=charset)  # type: ignore[operator]
    assert booking.comments == "Café naïve"
    assert booking.booking_id == 2


def test_the_charset_outranks_the_declaration() -> None:
    text = '<?xml version="1.0" encoding="ISO-8859-1"?>' + with_member(
        seed_text(), "Comments", "<Comments>Café</Comments>"
    )
    assert codec.decode(text.encode("utf-8"), MadeBooking, charset="utf-8").comments == "Café"


def test_bytes_that_are_not_their_encoding_are_decode_errors() -> None:
    with pytest.raises(DecodeError):
        codec.decode(b"<Error><Message>\xff\xfe\xfd</Message></Error>", ErrorBody, charset="utf-8")
    with pytest.raises(DecodeError, match="not valid ascii"):
        codec.decode(b"<Error><Message>\xe9</Message></Error>", ErrorBody, charset="us-ascii")


@pytest.mark.parametrize(
    ("body", "into", "expected"),
    [
        (f'<int xmlns="{SERIALIZATION}">299</int>', Decimal, Decimal("299")),
        (f'<decimal xmlns="{SERIALIZATION}">299.50</decimal>', Decimal, Decimal("299.50")),
        (f'<decimal xmlns="{SERIALIZATION}">-0.0001</decimal>', Decimal, Decimal("-0.0001")),
        (f'<long xmlns="{SERIALIZATION}">3000000000</long>', Decimal, Decimal("3000000000")),
        (f'<int xmlns="{SERIALIZATION}">299</int>', int, 299),
        (f'<string xmlns="{SERIALIZATION}">hi &amp; bye</string>', str, "hi & bye"),
        (f'<string xmlns="{SERIALIZATION}" />', str, ""),
        (f'<boolean xmlns="{SERIALIZATION}">false</boolean>', bool, False),
    ],
)
def test_primitive_roots(body: str, into: type, expected: object) -> None:
    value = codec.decode(body.encode(), into)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("body", "into", "message"),
    [
        ("<int>299</int>", Decimal, "expected root element <decimal> or <int> or <long>"),
        (f'<decimal xmlns="{SERIALIZATION}">299.50</decimal>', int, "found <decimal>"),
        (f'<decimal xmlns="{SERIALIZATION}">2,5</decimal>', Decimal, "expected a decimal"),
        (f'<decimal xmlns="{SERIALIZATION}"><x/></decimal>', Decimal, "must hold text"),
        (f'<decimal xmlns="{SERIALIZATION}" xmlns:i="{XSI}" i:nil="true"/>', Decimal, "is nil"),
        (f'<int xmlns="{SERIALIZATION}">2.5</int>', int, "expected an integer"),
    ],
)
def test_primitive_roots_of_the_wrong_kind(body: str, into: type, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        codec.decode(body.encode(), into)


def test_error_bodies() -> None:
    body = (
        b"<Error><Message>The request is invalid.</Message><ModelState>"
        b"<request.BookingID>The BookingID field is required. It must be positive.</request.BookingID>"
        b"</ModelState></Error>"
    )
    assert codec.decode(body, ErrorBody) == ErrorBody(
        message="The request is invalid.",
        model_state={"request.BookingID": ["The BookingID field is required. It must be positive."]},
    )


def test_error_bodies_with_exception_details_nest_and_empty_means_null() -> None:
    body = (
        b"<Error><Message>An error has occurred.</Message><ExceptionMessage>outer</ExceptionMessage>"
        b"<ExceptionType>System.InvalidOperationException</ExceptionType><StackTrace />"
        b"<InnerException><Message>An error has occurred.</Message>"
        b"<ExceptionMessage>inner</ExceptionMessage><StackTrace></StackTrace></InnerException></Error>"
    )
    assert codec.decode(body, ErrorBody) == ErrorBody(
        message="An error has occurred.",
        exception_message="outer",
        exception_type="System.InvalidOperationException",
        stack_trace=None,
        inner=ErrorBody(message="An error has occurred.", exception_message="inner"),
    )


def test_error_bodies_encode_as_http_error() -> None:
    error = ErrorBody(message="The request is invalid.", model_state={"request.BookingID": ["a", "b"]})
    assert codec.encode(error) == (
        b"<Error><Message>The request is invalid.</Message>"
        b"<ModelState><request.BookingID>a b</request.BookingID></ModelState></Error>"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("299.50"), f'<decimal xmlns="{SERIALIZATION}">299.50</decimal>'),
        (Decimal("8"), f'<decimal xmlns="{SERIALIZATION}">8</decimal>'),
        (Decimal("1E+2"), f'<decimal xmlns="{SERIALIZATION}">100</decimal>'),
        (299, f'<int xmlns="{SERIALIZATION}">299</int>'),
        (2**40, f'<long xmlns="{SERIALIZATION}">{2**40}</long>'),
        (True, f'<boolean xmlns="{SERIALIZATION}">true</boolean>'),
        ("a<b", f'<string xmlns="{SERIALIZATION}">a&lt;b</string>'),
    ],
)
def test_encode_primitive_roots(value: object, expected: str) -> None:
    assert codec.encode(value).decode() == expected


def test_encode_escapes_carriage_returns_so_they_survive() -> None:
    booking = SEED_JSON_BOOKING.__class__(
        booking_id=1, duration=1, credits=Decimal(1), status="Pending", method=1, comments="a\r\nb&<>\"'"
    )
    encoded = codec.encode(booking)
    assert b"<Comments>a&#xD;\nb&amp;&lt;&gt;\"'</Comments>" in encoded
    assert codec.decode(encoded, MadeBooking) == booking


def test_encode_aware_datetimes() -> None:
    booking = MadeBooking(
        booking_id=1,
        duration=1,
        credits=Decimal(1),
        status="Pending",
        method=1,
        create_date=datetime(2018, 1, 25, 14, 32, 12, tzinfo=UTC),
    )
    assert b"<CreateDate>2018-01-25T14:32:12Z</CreateDate>" in codec.encode(booking)


@pytest.mark.parametrize("text", ["\x00", "bell\x07", "\ufffe", "\ud800"])
def test_text_xml_cannot_carry_is_an_encode_error(text: str) -> None:
    booking = MadeBooking(
        booking_id=1, duration=1, credits=Decimal(1), status="Pending", method=1, comments=text
    )
    with pytest.raises(EncodeError, match=r"cannot be carried by XML 1\.0"):
        codec.encode(booking)


def test_a_model_state_key_that_is_not_an_element_name_is_an_encode_error() -> None:
    with pytest.raises(EncodeError, match="not an XML element name"):
        codec.encode(ErrorBody(message="x", model_state={"request[0]": ["bad"]}))


def test_candidate_alone_round_trips() -> None:
    encoded = codec.encode(SEED_CANDIDATE)
    assert encoded.startswith(f'<PhoneChatBookingUser xmlns:i="{XSI}" xmlns="{BOOKINGS}">'.encode())
    assert f'<Disputes xmlns="{PROFILE}">0</Disputes>'.encode() in encoded
    assert codec.decode(encoded, PhoneChatBookingUser) == SEED_CANDIDATE


def test_size_limit_is_checked_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("the body was parsed")

    monkeypatch.setattr(etree, "fromstring", no_parsing)
    with pytest.raises(DecodeError, match="exceeds the limit of 100 bytes"):
        XmlCodec(max_body_bytes=100).decode(fixture_bytes("made_booking.xml"), MadeBooking)


@pytest.mark.parametrize("body", [b"", b"   ", b"<", b"<a>", b"not xml", b"<a></b>", b"\x00\x00"])
def test_malformed_documents(body: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(body, MadeBooking)


def test_nesting_past_libxml2s_limit_is_refused() -> None:
    deep = b"<a>" * 300 + b"</a>" * 300
    with pytest.raises(DecodeError):
        codec.decode(deep, ErrorBody)
