"""Codecs: bodies to models and back, in JSON and in .NET DataContract XML.

A codec serves some media types and has ``decode(data, into, *, charset=None)`` and
``encode(value)`` (the :class:`Codec` protocol). Any bad body makes ``decode`` raise
:class:`~aw_async.errors.DecodeError`, and nothing else.

>>> from decimal import Decimal
>>> codec_for("application/xml; charset=utf-8").decode(
...     b'<decimal xmlns="http://schemas.microsoft.com/2003/10/Serialization/">299.50</decimal>', Decimal)
Decimal('299.50')
"""

from __future__ import annotations

from ._base import DEFAULT_MAX_BODY_BYTES, Codec, CodecSet, parse_media_type
from ._json import JsonCodec
from ._query import decode_query, encode_query
from ._xml import XmlCodec

__all__ = [
    "BUILT_IN_CODECS",
    "DEFAULT_MAX_BODY_BYTES",
    "Codec",
    "CodecSet",
    "JsonCodec",
    "XmlCodec",
    "codec_for",
    "decode_query",
    "encode_query",
    "parse_media_type",
]

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
