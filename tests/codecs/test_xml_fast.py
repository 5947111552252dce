"""The XML fast path against the general path: for every input, either the fast path declines, or it
gives the general path's value (``==`` and ``repr``); every refusal is the general path's, with its
wording and field path; and nothing reaches a model that the hardened parser did not accept."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aw_async.codecs import XmlCodec, fast_path_declines
from aw_async.codecs._fast import FastPathDeclined
from aw_async.codecs._xml import read_tree
from aw_async.codecs._xml_fast import fast_decode, fast_xml_models
from aw_async.errors import DecodeError
from aw_async.models import (
    MadeBooking,
    MadeBookingsPage,
    PhoneChatMethod,
)

from ..conftest import fixture_bytes
from ..strategies import answer_values, any_answer, made_bookings

CODEC = XmlCodec()
SERVED = list(answer_values)


def fast(data: bytes, into: type) -> Any:
    return fast_decode(data, into)


def agree(data: bytes, into: type) -> bool:
    """The fast path declines (False), or gives what the general path gives (True)."""
    try:
        value = fast(data, into)
    except FastPathDeclined:
        return False
    general = read_tree(data, into)  # must not raise: the fast path accepted nothing the general refuses
    assert value == general
    assert repr(value) == repr(general)
    return True


def outcome(decode: Any, data: bytes, into: type) -> str:
    try:
        return repr(decode(data, into))
    except DecodeError as exc:
        return f"refused: {exc} | {exc.path}"


def test_the_fast_path_serves_the_answer_models() -> None:
    assert set(fast_xml_models()) == set(SERVED)


def test_the_servers_own_sample_is_read_by_the_fast_path() -> None:
    # The vendor's sample, minus its two unclosed tags, indented as the server may send it.
    data = fixture_bytes("made_booking.xml")
    assert agree(data, MadeBooking)


@given(booking=made_bookings)
def test_bookings_agree_and_take_the_fast_path(booking: MadeBooking) -> None:
    data = CODEC.encode(booking)
    assert agree(data, MadeBooking)
    assert CODEC.decode(data, MadeBooking) == booking


@given(case=any_answer)
def test_every_answer_model_agrees_and_takes_the_fast_path(case: tuple[object, type]) -> None:
    value, into = case
    assert agree(CODEC.encode(value), into)


# What replaces a member's text: valid, invalid and the parser's corners (references, line ends).
odd_texts = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "1",
            " 1",
            "+1",
            "-0",
            "01",
            "\u0663",
            "1.5",
            "1e5",
            "8.0000",
            "79228162514264337593543950336",
            "true",
            "false",
            "0",
            "Pending",
            "Unknown",
            "2018-01-25T14:32:12.4567891",
            "2018-01-25 14:32",
            "2018-02-30T00:00:00",
            "2018-01-25T14:32:12+0100",
            "2018-01-25T14:32:Z",
            "2018-01-25T14:32:12Z",
            "&amp;",
            "&lt;x&gt;",
            "a&#xD;b",
            "&#13;",
            "a\r\nb",
            "a\rb",
            "&#x1F600;",
            "&quot;&apos;",
            "]]>",
            "&#0;",
            "&nbsp;",
            "<![CDATA[1]]>",
            "<!-- c -->1",
            "1<?pi x?>",
            "<x>1</x>",
            "&#x80;",
        ]
    ),
    st.text(alphabet="0123456789-.:T &#;xD\r\n<>a", max_size=12),
)

_ELEMENT = re.compile(r"<((?:[A-Za-z0-9]+:)?[A-Za-z]+)(?: xmlns(?::[a-z0-9]+)?=\"[^\"]*\")*>([^<]*)</\1>")
_NIL = re.compile(r"<((?:[A-Za-z0-9]+:)?[A-Za-z]+)(?: xmlns=\"[^\"]*\")? i:nil=\"true\" />")


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, type]:
    """A valid document with one change, of the kinds that separate the server's usual layout from
    everything else a reader must still get right."""
    into = draw(st.sampled_from(SERVED))
    text = CODEC.encode(draw(answer_values[into])).decode()
    texts = list(_ELEMENT.finditer(text))
    nils = list(_NIL.finditer(text))
    action = draw(
        st.sampled_from(
            [
                "text",
                "drop",
                "duplicate",
                "swap",
                "unknown",
                "comment",
                "indent",
                "nil one",
                "nil false",
                "empty",
                "open-close",
                "prefix",
                "prefix i",
                "default ns",
                "attribute",
                "declaration",
                "trailing",
                "namespace",
            ]
        )
    )
    if texts and action in ("text", "drop", "duplicate", "swap", "unknown", "comment", "empty", "attribute"):
        chosen = draw(st.sampled_from(texts))
        start, end = chosen.span()
        name, content = chosen.group(1), chosen.group(2)
        element = chosen.group()
        head = element[: element.index(">") + 1]
        if action == "text":
            element = f"{head}{draw(odd_texts)}</{name}>"
        elif action == "drop":
            element = ""
        elif action == "duplicate":
            element = element * 2
        elif action == "swap" and len(texts) > 1:
            other = draw(st.sampled_from(texts))
            if other.start() > end:
                return (
                    text[:start] + other.group() + text[end : other.start()] + element + text[other.end() :]
                ).encode(), into
        elif action == "unknown":
            element = f"<Unheard>{content}</Unheard>{element}"
        elif action == "comment":
            element = f"<!-- {content[:5]} -->{element}"
        elif action == "empty":
            element = head[:-1] + " />"
        elif action == "attribute":
            element = head[:-1] + ' x="1">' + content + f"</{name}>"
        return (text[:start] + element + text[end:]).encode(), into
    if nils and action in ("nil one", "nil false", "open-close"):
        chosen = draw(st.sampled_from(nils))
        replacement = {
            "nil one": chosen.group().replace('"true"', '"1"'),
            "nil false": chosen.group().replace('"true"', '"false"'),
            "open-close": chosen.group().replace(" />", "></" + chosen.group(1) + ">"),
        }[action]
        return (text[: chosen.start()] + replacement + text[chosen.end() :]).encode(), into
    if action == "indent":
        return re.sub(r"><(?!/)", ">\n  <", text).encode(), into
    if action == "prefix":
        return re.sub(r"d([0-9])p1", r"d\g<1>p7", text).encode(), into
    if action == "prefix i":
        return text.replace("d4p1", "i").encode(), into
    if action == "default ns":  # a nested object's namespace as the default on its own element
        return re.sub(r'xmlns:d4p1="([^"]*)"', r'xmlns="\1"', text).replace("d4p1:", "").encode(), into
    if action == "declaration":
        return ('<?xml version="1.0" encoding="utf-8"?>\n' + text).encode(), into
    if action == "trailing":
        return (text + "\n\n").encode(), into
    if action == "namespace":
        return text.replace("PhoneChat.Bookings", "PhoneChat.Booking", 1).encode(), into
    return text.encode(), into


def check(case: tuple[bytes, type]) -> None:
    data, into = case
    fast_path_declines(reset=True)
    with contextlib.suppress(DecodeError):  # the general path refuses: agree() saw the fast path decline
        agree(data, into)
    # Every decline has a reason the fast path foresaw: none is an error of its own.
    assert not any(reason.startswith("unexpected") for reason in fast_path_declines()["xml"])
    # Through the codec, the outcome (value or refusal, wording and path) is the general path's.
    assert outcome(CODEC.decode, data, into) == outcome(read_tree, data, into)


@given(case=mutated())
@example(
    case=(
        b'<PhoneChatMethod xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        b'xmlns="http://schemas.datacontract.org/2004/07/API.Models.PhoneChat">'
        b"<Description>a&amp;b&#xD;&#10;c\r\nd</Description><Method>1</Method></PhoneChatMethod>",
        PhoneChatMethod,
    )
)
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_documents_agree_and_refusals_are_the_general_paths(case: tuple[bytes, type]) -> None:
    check(case)


@pytest.mark.slow
@given(case=mutated())
@settings(max_examples=20_000, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_documents_agree_at_length(case: tuple[bytes, type]) -> None:
    check(case)


def test_references_and_line_ends_are_read_as_the_parser_reads_them() -> None:
    data = (
        b'<PhoneChatMethod xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
        b'xmlns="http://schemas.datacontract.org/2004/07/API.Models.PhoneChat">'
        b"<Description>a&amp;b&#xD;&#10;c\r\nd\re&#x1F600;&lt;&gt;&quot;&apos;</Description>"
        b"<Method>1</Method></PhoneChatMethod>"
    )
    value = fast(data, PhoneChatMethod)
    assert value.description == "a&b\r\nc\nd\ne\U0001f600<>\"'"
    assert value == read_tree(data, PhoneChatMethod)


def test_a_body_the_hardened_parser_refuses_never_reaches_a_model() -> None:
    # Refused by the general path's parser: a character reference to NUL (the validating parser
    # raises), a prefix never declared and an empty prefixed namespace (it only logs them). The
    # fast path declines each; the general path words the refusal.
    booking = CODEC.encode(PhoneChatMethod(method=1, description="x")).decode()
    undeclared = booking.replace("<Method>", "<undeclared:Method>", 1).replace(
        "</Method>", "</undeclared:Method>"
    )
    empty_namespace = booking.replace("<Method>", '<Method xmlns:p="">', 1)
    for bad, reason in (
        (undeclared, "logged an error"),
        (empty_namespace, "logged an error"),
        (booking.replace(">x<", ">&#0;<"), "refused the body"),
    ):
        with pytest.raises(FastPathDeclined, match=reason):  # the parser's check, before any other
            fast(bad.encode(), PhoneChatMethod)
        with pytest.raises(DecodeError, match="malformed XML"):
            CODEC.decode(bad.encode(), PhoneChatMethod)


def test_a_refusal_keeps_the_general_paths_wording() -> None:
    page = CODEC.encode(
        MadeBookingsPage(
            page_count=1,
            page_number=1,
            bookings=(MadeBooking(booking_id=1, duration=1, credits=1, status="Pending", method=1),) * 4,  # type: ignore[arg-type]
        )
    )
    bad = page.replace(b"<d4p1:Credits>1</d4p1:Credits>", b"<d4p1:Credits>x</d4p1:Credits>")
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(bad, MadeBookingsPage)
    assert str(caught.value).startswith("invalid MadeBookingsPage at Bookings[0].Credits:")
    assert "(and 3 more problems)" in str(caught.value)
    assert caught.value.path == "Bookings[0].Credits"
