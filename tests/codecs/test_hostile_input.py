"""Hostile input at scale: deep nesting, huge text, every encoding declaration, and growth that stays
linear. The bigger example budgets run under the ``slow`` marker, which CI runs.

"Linear" is checked without a clock (these machines are shared and noisy): the Python function calls
and the peak memory a decode costs are counted for an input of size n and of size 4n.
"""

from __future__ import annotations

import codecs
import contextlib
import sys
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from types import FrameType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.errors import DecodeError
from aw_async.models import ErrorBody, MadeBooking

from ..conftest import fixture_bytes

json_codec, xml_codec = JsonCodec(), XmlCodec()
INTO = [MadeBooking, ErrorBody, Decimal]


def only_decode_errors(codec: JsonCodec | XmlCodec, body: bytes, charset: str | None = None) -> None:
    for into in INTO:
        with contextlib.suppress(DecodeError):
            codec.decode(body, into, charset=charset)


# --- size, depth, encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [10, 255, 300, 1000, 100_000])
def test_deep_xml_nesting(depth: int) -> None:
    only_decode_errors(xml_codec, b"<Error>" + b"<a>" * depth + b"</a>" * depth + b"</Error>")


@pytest.mark.parametrize("depth", [10, 1000, 100_000])
def test_deep_json_nesting(depth: int) -> None:
    only_decode_errors(json_codec, b'{"Message": ' + b"[" * depth + b"]" * depth + b"}")
    only_decode_errors(json_codec, b'{"ModelState": ' + b'{"a":' * depth + b"1" + b"}" * depth + b"}")


@pytest.mark.parametrize("size", [1_000_000, 9_000_000])
def test_huge_text_nodes_within_the_limit(size: int) -> None:
    text = "é" * (size // 2)
    assert xml_codec.decode(f"<Error><Message>{text}</Message></Error>".encode(), ErrorBody).message == text
    assert json_codec.decode(f'{{"Message": "{text}"}}'.encode(), ErrorBody).message == text


def test_a_body_over_the_limit_is_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    from lxml import etree

    parsed: list[bytes] = []
    real = etree.fromstring
    monkeypatch.setattr(etree, "fromstring", lambda data, *a, **k: parsed.append(data) or real(data, *a, **k))
    body = b"<Error><Message>" + b"x" * (10 * 2**20) + b"</Message></Error>"
    for codec in (xml_codec, json_codec):
        with pytest.raises(DecodeError, match="exceeds the limit"):
            codec.decode(body, ErrorBody)
    assert parsed == []


_REAL_ENCODINGS = [
    "utf-8",
    "utf-16",
    "utf-16-le",
    "utf-16-be",
    "utf-32",
    "latin-1",
    "ascii",
    "cp1252",
    "iso-8859-15",
    "koi8-r",
    "shift_jis",
    "euc-jp",
    "gb18030",
    "big5",
    "cp500",
    "mac-roman",
    "utf-7",
]
#: Every encoding a declaration or a charset could name, and names no codec knows.
ENCODINGS = [
    *sorted({codecs.lookup(name).name for name in _REAL_ENCODINGS}),
    *("klingon", "", "utf-8; drop table", "UTF-9", "x" * 300),
]


@pytest.mark.parametrize("declared", ENCODINGS)
@pytest.mark.parametrize("actual", ["utf-8", "utf-16", "latin-1", "cp500"])
def test_every_encoding_declaration(declared: str, actual: str) -> None:
    document = f'<?xml version="1.0" encoding="{declared}"?><Error><Message>Café</Message></Error>'
    with contextlib.suppress(UnicodeEncodeError):
        body = document.encode(actual)
        only_decode_errors(xml_codec, body)
        only_decode_errors(xml_codec, body, charset=declared or None)
    only_decode_errors(json_codec, b'{"Message": "x"}', charset=declared or None)


@pytest.mark.slow
@settings(max_examples=3000)
@given(data=st.binary(max_size=4096), charset=st.none() | st.sampled_from(ENCODINGS))
def test_arbitrary_bytes_at_length(data: bytes, charset: str | None) -> None:
    only_decode_errors(xml_codec, data, charset)
    only_decode_errors(json_codec, data, charset)


@pytest.mark.slow
@settings(max_examples=1500)
@given(
    prefix=st.binary(max_size=64),
    cut=st.integers(0, 4000),
    insert=st.sampled_from(
        [b"<!DOCTYPE x>", b"<!ENTITY a 'b'>", b"&a;", b"\xff\xfe", b"\x00", b"]]>", b"<![CDATA["]
    ),
)
def test_spliced_hostile_fragments(prefix: bytes, cut: int, insert: bytes) -> None:
    for fixture, codec in (("made_booking.xml", xml_codec), ("made_booking.json", json_codec)):
        body = fixture_bytes(fixture)
        cut_at = cut % (len(body) + 1)
        only_decode_errors(codec, prefix + body[:cut_at] + insert + body[cut_at:])


# --- growth -----------------------------------------------------------------------------------------


def cost(decode: Callable[[], object]) -> tuple[int, int]:
    """(Python lines executed, peak traced bytes) of one decode: deterministic, no clock.

    Lines, not calls: a quadratic loop inside one function (a comprehension over all the siblings of
    each element) runs in a linear number of calls but a quadratic number of lines.
    """
    lines = 0

    def trace(frame: FrameType, event: str, arg: object) -> Callable[..., object]:
        nonlocal lines
        if event == "line":
            lines += 1
        return trace

    sys.settrace(trace)
    try:
        with contextlib.suppress(DecodeError):
            decode()
    finally:
        sys.settrace(None)
    tracemalloc.start()
    with contextlib.suppress(DecodeError):
        decode()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return lines, peak


GROWING_INPUTS: dict[str, Callable[[int], tuple[JsonCodec | XmlCodec, bytes, type]]] = {
    "xml: many model-state keys": lambda n: (
        xml_codec,
        b"<Error><ModelState>"
        + b"".join(b"<k%d>m</k%d>" % (i, i) for i in range(n))
        + b"</ModelState></Error>",
        ErrorBody,
    ),
    "xml: many unknown members": lambda n: (
        xml_codec,
        b"<Error>" + b"<Unknown>x</Unknown>" * n + b"<Message>m</Message></Error>",
        ErrorBody,
    ),
    "xml: a long text full of escapes": lambda n: (
        xml_codec,
        b"<Error><Message>" + b"&amp;&lt;&#xD;" * n + b"</Message></Error>",
        ErrorBody,
    ),
    "xml: a member repeated": lambda n: (
        xml_codec,
        b"<Error>" + b"<Message>m</Message>" * n + b"</Error>",
        ErrorBody,
    ),
    "json: many model-state keys": lambda n: (
        json_codec,
        b'{"ModelState": {' + b",".join(b'"k%d": ["m"]' % i for i in range(n)) + b"}}",
        ErrorBody,
    ),
    "json: many unknown members": lambda n: (
        json_codec,
        b"{" + b",".join(b'"U%d": [1, 2]' % i for i in range(n)) + b', "Message": "m"}',
        ErrorBody,
    ),
    "json: a long string of escapes": lambda n: (
        json_codec,
        b'{"Message": "' + b"\\u00e9\\n" * n + b'"}',
        ErrorBody,
    ),
    "json: a long datetime": lambda n: (
        json_codec,
        b'{"BookingID": 1, "Duration": 1, "Credits": 1, "Status": "x", "Method": 1, "CreateDate": "'
        + b"2018-01-25T14:32:12."
        + b"1" * n
        + b'"}',
        MadeBooking,
    ),
}


@pytest.mark.parametrize("name", list(GROWING_INPUTS))
def test_cost_grows_linearly_with_the_input(name: str) -> None:
    small_codec, small, into = GROWING_INPUTS[name](500)
    big_codec, big, _ = GROWING_INPUTS[name](2000)
    small_lines, small_peak = cost(lambda: small_codec.decode(small, into))
    big_lines, big_peak = cost(lambda: big_codec.decode(big, into))
    # 4x the input may cost 4x, plus constant overheads; quadratic growth would show as ~16x.
    assert big_lines <= 4.5 * small_lines + 200, (small_lines, big_lines)
    assert big_peak <= 4.5 * small_peak + 64_000, (small_peak, big_peak)
