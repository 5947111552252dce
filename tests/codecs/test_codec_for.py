"""Picking a codec by Content-Type, and plugging in codecs of one's own."""

from __future__ import annotations

from typing import Any, TypeVar

import pytest

from aw_async.codecs import Codec, JsonCodec, XmlCodec, codec_for
from aw_async.codecs._base import CodecSet, parse_media_type
from aw_async.errors import DecodeError

T = TypeVar("T")


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", JsonCodec),
        ("application/json; charset=utf-8", JsonCodec),
        ("Application/JSON;Charset=UTF-8", JsonCodec),
        ('  application/json ; charset="utf-16"', JsonCodec),
        ("text/json", JsonCodec),
        ("application/problem+json", JsonCodec),
        ("application/xml", XmlCodec),
        ("text/xml; charset=utf-16", XmlCodec),
        ("TEXT/XML", XmlCodec),
        ("application/atom+xml", XmlCodec),
    ],
)
def test_codec_for_picks_by_media_type(content_type: str, expected: type) -> None:
    assert type(codec_for(content_type)) is expected


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "", "application/octet-stream", "json"])
def test_codec_for_an_unknown_type_is_a_decode_error(content_type: str) -> None:
    with pytest.raises(DecodeError, match="cannot decode") as caught:
        codec_for(content_type)
    assert "application/json" in str(caught.value)  # it says what it could have decoded


def test_parse_media_type() -> None:
    expected = ("text/xml", {"charset": "UTF-16", "q": "1"})
    assert parse_media_type('Text/XML; Charset="UTF-16"; q=1') == expected
    assert parse_media_type("") == ("", {})


def test_media_types_list_the_accept_value_first() -> None:
    assert JsonCodec().media_types[0] == "application/json"
    assert XmlCodec().media_types[0] == "application/xml"


class ShoutingCodec:
    """A user's codec: it serves a vendor type and delegates to the JSON codec."""

    media_types = ("application/vnd.shout+json",)

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, data: bytes, into: type[T], *, charset: str | None = None) -> T:
        self.calls += 1
        return JsonCodec().decode(data, into, charset=charset)

    def encode(self, value: Any) -> bytes:
        return JsonCodec().encode(value)


def test_a_users_codec_satisfies_the_protocol_and_plugs_in() -> None:
    shouting = ShoutingCodec()
    assert isinstance(shouting, Codec)
    assert isinstance(JsonCodec(), Codec)
    assert isinstance(XmlCodec(), Codec)
    codecs = CodecSet([shouting, XmlCodec()])
    assert codecs.for_content_type("application/vnd.shout+json; charset=utf-8") is shouting
    assert isinstance(codecs.for_content_type("text/xml"), XmlCodec)
    with pytest.raises(DecodeError, match=r"application/vnd\.shout\+json"):
        codecs.for_content_type("application/json")


def test_the_first_codec_serving_a_type_wins() -> None:
    first, second = JsonCodec(), JsonCodec()
    assert CodecSet([first, second]).for_content_type("application/json") is first


def test_a_codec_set_needs_a_codec() -> None:
    with pytest.raises(ValueError, match="at least one codec"):
        CodecSet([])
