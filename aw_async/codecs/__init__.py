"""Codecs: bodies to models and back, in JSON and in .NET DataContract XML.

A codec serves some media types and has ``decode(data, into, *, charset=None)`` and
``encode(value)`` (the :class:`Codec` protocol). Any bad body makes ``decode`` raise
:class:`~aw_async.errors.DecodeError`, and nothing else.

>>> from decimal import Decimal
>>> codec_for("application/xml; charset=utf-8").decode(
...     b'<decimal xmlns="http://schemas.microsoft.com/2003/10/Serialization/">299.50</decimal>', Decimal)
Decimal('299.50')

Fast paths (docs/design.md, "Fast paths"): each built-in codec first offers an answer to a fast path,
which gives the general path's value or declines, and the general path decides. Two handles for a
maintainer:

- ``AW_ASYNC_FAST_PATHS=0`` in the environment when aw_async is imported turns both fast paths off
  (also ``false``, ``off``, ``no``): every decode takes the general path, with the same values.
- :func:`fast_path_declines` counts why the fast paths declined, by format and reason; each decline
  is also logged at DEBUG on the ``aw_async`` logger. The server's usual answers decline nothing:

>>> from aw_async.models import PhoneChatMethod
>>> _ = fast_path_declines(reset=True)
>>> JsonCodec().decode(b'{"Method":1,"Description":"Phone"}', PhoneChatMethod)
PhoneChatMethod(method=<CallMethod.CALLED_BY_CANDIDATE: 1>, description='Phone')
>>> fast_path_declines()
{'json': {}, 'xml': {}}
"""

from __future__ import annotations

from ._base import Codec
from ._fast import fast_path_declines
from ._json import JsonCodec
from ._registry import codec_for
from ._xml import XmlCodec

__all__ = ["Codec", "JsonCodec", "XmlCodec", "codec_for", "fast_path_declines"]
