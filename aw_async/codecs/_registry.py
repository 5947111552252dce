"""The built-in codecs, and the one for a ``Content-Type``."""

from __future__ import annotations

from ._base import CodecSet
from ._json import JsonCodec
from ._xml import XmlCodec

__all__ = ["BUILT_IN_CODECS", "codec_for"]

#: The codecs a client uses unless it is given others.
BUILT_IN_CODECS = CodecSet((JsonCodec(), XmlCodec()))


def codec_for(content_type: str) -> JsonCodec | XmlCodec:
    """The built-in codec for a ``Content-Type``, ignoring parameters and case.

    Raises:
        DecodeError: neither JSON nor XML is the media type.
    """
    codec = BUILT_IN_CODECS.for_content_type(content_type)
    assert isinstance(codec, JsonCodec | XmlCodec)
    return codec
