"""The JSON fast path against the general path: for every input, either the fast path declines, or it
gives the general path's value (``==`` and ``repr``); and every refusal is the general path's, with its
wording, field path and count."""

from __future__ import annotations

import contextlib
import json
import re
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aw_async.codecs import JsonCodec, fast_path_declines
from aw_async.codecs._fast import FastPathDeclined
from aw_async.codecs._json import _parse
from aw_async.codecs._json_fast import _holds_a_long_run_of_digits, fast_decode, fast_models
from aw_async.codecs._structure import JSON_STRUCTURER
from aw_async.errors import DecodeError
from aw_async.models import MadeBooking, MadeBookingsPage, PhoneChatMethod, UserBookingRequirements

from ..conftest import fixture_bytes
from ..strategies import answer_values, any_answer, made_bookings

CODEC = JsonCodec()
SERVED = list(answer_values)


def general(data: bytes, into: type) -> Any:
    """The general path alone: parse, then type with cattrs."""
    return JSON_STRUCTURER(_parse(data.decode("utf-8")), into)


def agree(data: bytes, into: type) -> None:
    """The fast path declines, or gives what the general path gives."""
    try:
        fast = fast_decode(data, into)
    except FastPathDeclined:
        return
    slow = general(data, into)  # must not raise: the fast path accepted nothing the general refuses
    assert fast == slow
    assert repr(fast) == repr(slow)


def test_every_served_model_has_a_strategy() -> None:
    missing = set(fast_models()) - set(SERVED)
    assert not missing, f"add a strategy for {missing} to answer_values in tests/strategies.py"
    assert set(SERVED) <= set(fast_models()), "a model the fast path does not serve has a strategy here"


@pytest.mark.parametrize("model", SERVED)
def test_the_models_can_be_built_without_their_init(model: type) -> None:
    # The fast path sets each slot itself: that is only the same as __init__ while the models have
    # no validators, converters, post-init hooks or on_setattr hooks.
    for field in attrs.fields(model):
        assert field.validator is None, field.name
        assert field.converter is None, field.name
    assert not hasattr(model, "__attrs_post_init__")
    assert not hasattr(model, "__attrs_pre_init__")
    assert "__slots__" in model.__dict__


def test_the_seed_is_read_the_same() -> None:
    data = fixture_bytes("made_booking.json")
    assert fast_decode(data, MadeBooking) == general(data, MadeBooking)


@given(booking=made_bookings)
def test_bookings_agree(booking: MadeBooking) -> None:
    data = CODEC.encode(booking)
    agree(data, MadeBooking)
    assert CODEC.decode(data, MadeBooking) == booking


@given(case=any_answer)
def test_every_answer_model_agrees(case: tuple[object, type]) -> None:
    value, into = case
    agree(CODEC.encode(value), into)


# Values of every JSON type, and the wire's odd corners: they replace members of valid documents.
odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(
        ["1E+5", "1e-3", "8.0000", "-0.0", "-0", "00", "1.", "79228162514264337593543950336", "0.1"]
    ),
    # One digit past Python's int-from-text limit (sys.get_int_max_str_digits(), 4,300 by default),
    # and the limit itself: the general path's parser refuses the first anywhere in a document.
    st.sampled_from(["1" * 4301, "-" + "9" * 4301, "1" * 4300, "0." + "1" * 4301]),
    # Bytes that are not UTF-8, in a string (the document is encoded with surrogateescape).
    st.sampled_from(['"\udcff"', '"caf\udcc3"', '"\udced\udca0\udc80"']),
    st.text(max_size=12).map(json.dumps),
    st.sampled_from(
        [
            '"2018-01-25T14:32:12.4567891"',
            '"2018-01-25 14:32"',
            '"2018-02-30T00:00:00"',
            '"2018-01-25T14:32:12+0100"',
            '"2018-01-25T14:32:Z"',
            '"\\ud800"',
            '"Pending"',
            '"Unknown"',
            "[]",
            "{}",
            '[{"BookingID": 1}]',
        ]
    ),
)


@st.composite
def mutated(draw: st.DrawFn) -> tuple[bytes, type]:
    into = draw(st.sampled_from(SERVED))
    value = draw(answer_values[into])
    document = json.loads(CODEC.encode(value), parse_float=str, parse_int=str)
    raw = CODEC.encode(value).decode()
    if isinstance(document, dict) and document:
        key = draw(st.sampled_from(sorted(document)))
        action = draw(st.sampled_from(["replace", "drop", "duplicate", "unknown"]))
        members = json.loads(raw)
        if action == "drop":
            members.pop(key)
            return json.dumps(members).encode(), into
        replacement = draw(odd_values)
        head, _, tail = raw.partition(f'"{key}":')
        cut = _value_end(tail)
        if action == "replace":
            return _bytes(f'{head}"{key}":{replacement}{tail[cut:]}'), into
        if action == "duplicate":
            return _bytes(f'{head}"{key}":{replacement},"{key}":{tail}'), into
        return _bytes(f'{head}"Unheard":{replacement},"{key}":{tail}'), into
    return raw.encode(), into


def _bytes(document: str) -> bytes:
    """The document's bytes; a lone surrogate U+DC80 to U+DCFF stands for a byte that is not UTF-8."""
    return document.encode("utf-8", "surrogateescape")


def _value_end(text: str) -> int:
    """Where the JSON value at the start of ``text`` ends."""
    _, end = json.JSONDecoder().raw_decode(text)
    return end


def _refusal(data: bytes, into: type) -> str | None:
    try:
        CODEC.decode(data, into)
    except DecodeError as exc:
        return f"{exc} | {exc.path}"
    return None


@given(case=mutated())
@example(case=(b'{"PageCount": 1, "PageNumber": 1, "Bookings": null}', MadeBookingsPage))
@example(case=(b'{"BookingID": 1, "Duration": 1, "Credits": 1E+5, "Status": "x", "Method": 1}', MadeBooking))
# 29 digits, one past .NET's largest decimal: a text that short was once taken as surely in range.
@example(case=(b'{"Methods":[],"PhoneChatPPM":79228162514264337593543950336}', UserBookingRequirements))
# Once accepted by the fast path alone: a negative zero without a fraction (Decimal('-0') where the
# general path reads the integer 0), an integer past Python's int-from-text limit in an unknown
# member, and bytes that are not UTF-8 in an unknown member (msgspec skips both unread).
@example(case=(b'{"BookingID":1,"Duration":1,"Credits":-0,"Status":"x","Method":1}', MadeBooking))
@example(case=(b'{"Method":1,"Unheard":' + b"1" * 4301 + b"}", PhoneChatMethod))
@example(case=(b'{"Method":1,"Unheard":"caf\xc3"}', PhoneChatMethod))
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_mutated_documents_agree_and_refusals_are_the_general_paths(case: tuple[bytes, type]) -> None:
    data, into = case
    fast_path_declines(reset=True)
    with contextlib.suppress(DecodeError, ValueError):  # the general path refuses: checked next
        agree(data, into)
    # Every decline has a reason the fast path foresaw: none is an error of its own.
    assert not any(reason.startswith("unexpected") for reason in fast_path_declines()["json"])
    refusal = _refusal(data, into)
    try:
        general_refusal = None
        general(data, into)
    except Exception as exc:
        general_refusal = exc
    if general_refusal is None:
        assert refusal is None
    else:
        assert refusal is not None


@pytest.mark.slow
@given(case=mutated())
@settings(max_examples=20_000, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_documents_agree_at_length(case: tuple[bytes, type]) -> None:
    data, into = case
    fast_path_declines(reset=True)
    with contextlib.suppress(DecodeError, ValueError):
        agree(data, into)
    assert not any(reason.startswith("unexpected") for reason in fast_path_declines()["json"])


def test_a_refusal_keeps_the_general_paths_wording() -> None:
    bad = CODEC.encode(
        MadeBookingsPage(
            page_count=1,
            page_number=1,
            bookings=(
                attrs.evolve(
                    MadeBooking(booking_id=1, duration=1, credits=Decimal(1), status="Pending", method=1)
                ),
            )
            * 4,
        )
    )
    bad = bad.replace(b'"Credits":1.0', b'"Credits":"x"', 4)
    with pytest.raises(DecodeError) as caught:
        CODEC.decode(bad, MadeBookingsPage)
    assert str(caught.value).startswith("invalid MadeBookingsPage at Bookings[0].Credits: expected a decimal")
    assert "(and 3 more problems)" in str(caught.value)
    assert caught.value.path == "Bookings[0].Credits"


# Where the JSON fast path once disagreed with the general path.

_BOOKING = b'{"BookingID":1,"Duration":1,"Credits":%s,"Status":"Pending","Method":1%s}'


def test_a_negative_zero_without_a_fraction_is_the_general_paths_zero() -> None:
    data = _BOOKING % (b"-0", b"")
    value = fast_decode(data, MadeBooking)  # the fast path serves it, with the general path's value
    assert repr(value.credits) == repr(general(data, MadeBooking).credits) == "Decimal('0')"
    assert (
        repr(fast_decode(_BOOKING % (b"-0.0", b""), MadeBooking).credits) == "Decimal('-0.0')"
    )  # a fraction: kept


def test_an_integer_past_pythons_limit_in_an_unknown_member_is_the_general_paths_to_refuse() -> None:
    data = _BOOKING % (b"1.0", b',"Unheard":' + b"7" * 4301)
    with pytest.raises(FastPathDeclined):
        fast_decode(data, MadeBooking)
    with pytest.raises(DecodeError, match=r"malformed JSON.*4300"):
        CODEC.decode(data, MadeBooking)


def test_an_integer_at_pythons_limit_in_an_unknown_member_is_read() -> None:
    data = _BOOKING % (b"1.0", b',"Unheard":' + b"7" * 4300)
    assert CODEC.decode(data, MadeBooking) == general(data, MadeBooking)


def test_a_long_body_with_no_long_integer_is_served_by_the_fast_path() -> None:
    # A page is longer than the limit: the check must not decline it for its length alone.
    page = CODEC.encode(
        MadeBookingsPage(
            page_count=1, page_number=1, bookings=(general(_BOOKING % (b"1.0", b""), MadeBooking),) * 100
        )
    )
    assert len(page) > 4301
    assert fast_decode(page, MadeBookingsPage) == general(page, MadeBookingsPage)


def test_bytes_that_are_not_utf8_in_an_unknown_member_are_the_general_paths_to_refuse() -> None:
    data = _BOOKING % (b"1.0", b',"Unheard":"caf\xc3"')
    with pytest.raises(FastPathDeclined):
        fast_decode(data, MadeBooking)
    with pytest.raises(DecodeError, match="not valid utf-8"):
        CODEC.decode(data, MadeBooking)


def test_text_that_is_utf8_but_not_ascii_is_served_by_the_fast_path() -> None:
    data = _BOOKING % (b"1.0", ',"Comments":"caf\u00e9 \u2615"'.encode())
    assert fast_decode(data, MadeBooking).comments == "café ☕"


@given(
    data=st.lists(st.sampled_from([b"7", b"7", b"7", b",", b"a"]), max_size=200).map(b"".join),
    limit=st.integers(1, 40),
)
def test_the_long_integer_check_finds_every_run_past_the_limit(data: bytes, limit: int) -> None:
    longest = max((len(run) for run in re.findall(rb"[0-9]+", data)), default=0)
    found = _holds_a_long_run_of_digits(data, limit)
    if longest > limit:
        assert found  # never misses one: the general path would refuse the document
    if found:
        assert longest > limit // 2  # and declines only for a run of more than half the limit
