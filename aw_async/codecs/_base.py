"""What every codec shares: the :class:`Codec` protocol, media types, body limits and charsets."""

from __future__ import annotations

import codecs
import functools
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Protocol, TypeVar, runtime_checkable

from ..errors import DecodeError

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Codec",
    "CodecSet",
    "body_text",
    "check_size",
    "decode_text",
    "is_plain_utf8",
    "normalize_charset",
    "parse_media_type",
    "split_bom",
]

T = TypeVar("T")

#: Bodies larger than this are refused before they are parsed (10 MiB). A MadeBooking is ~1 KiB.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


@runtime_checkable
class Codec(Protocol):
    """Turns bodies of some media types into models and back.

    ``media_types`` lists the types served; the first is the one a client sends in ``Accept``.
    ``decode`` raises :class:`~aw_async.errors.DecodeError` and nothing else for a bad body.
    """

    @property
    def media_types(self) -> tuple[str, ...]: ...

    def decode(self, data: bytes, into: type[T], *, charset: str | None = None) -> T: ...

    def encode(self, value: object) -> bytes: ...


@functools.lru_cache(maxsize=256)  # a server sends a handful of distinct Content-Type values
def parse_media_type(content_type: str) -> tuple[str, Mapping[str, str]]:
    """Split ``application/json; charset=UTF-8`` into ``("application/json", {"charset": "UTF-8"})``.

    The type and parameter names are lower-cased (they are case-insensitive); values keep their case
    and lose their quotes.
    """
    media_type, _, rest = content_type.partition(";")
    params: dict[str, str] = {}
    for item in rest.split(";"):
        name, eq, value = item.partition("=")
        if eq:
            params[name.strip().lower()] = value.strip().strip('"')
    return media_type.strip().lower(), MappingProxyType(params)  # read-only: the result is shared


class CodecSet:
    """Picks the codec for a response by its ``Content-Type``, ignoring parameters and case.

    Besides the exact types a codec lists, a structured-syntax suffix (``application/problem+json``)
    goes to the codec that serves the bare syntax (``application/json``).
    """

    def __init__(self, codecs: Iterable[Codec]) -> None:
        self.codecs: tuple[Codec, ...] = tuple(codecs)
        if not self.codecs:
            raise ValueError("at least one codec is needed")
        self._by_type: dict[str, Codec] = {}
        for codec in self.codecs:
            for media_type in codec.media_types:
                self._by_type.setdefault(media_type.lower(), codec)

    def for_content_type(self, content_type: str | None) -> Codec:
        """The codec for a ``Content-Type`` header value.

        Raises:
            DecodeError: no codec serves that media type, or there is no media type at all.
        """
        media_type = parse_media_type(content_type or "")[0]
        codec = self._by_type.get(media_type)
        if codec is None and "+" in media_type:
            suffix = media_type.rpartition("+")[2]
            codec = self._by_type.get(f"application/{suffix}")
        if codec is None:
            served = ", ".join(sorted(self._by_type))
            shown = media_type or "no Content-Type"
            raise DecodeError(f"cannot decode {shown!r}: the codecs in use serve {served}")
        return codec

    def decode(self, data: bytes, into: type[T], *, content_type: str | None) -> T:
        """Decode a response body by its ``Content-Type``: the codec serving the media type, given
        the header's charset.

        Raises:
            DecodeError: no codec serves the media type, or the body is not a valid ``into``.
        """
        codec = self.for_content_type(content_type)
        return codec.decode(data, into, charset=parse_media_type(content_type or "")[1].get("charset"))


def check_size(data: bytes, limit: int) -> None:
    """Refuse a body over the size limit before any parsing is spent on it."""
    if len(data) > limit:
        raise DecodeError(f"body of {len(data)} bytes exceeds the limit of {limit} bytes")


# UTF-32 first: its little-endian BOM starts with UTF-16's.
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_BOM_STARTS = frozenset(bom[:2] for bom, _ in _BOMS)


def split_bom(data: bytes) -> tuple[str | None, bytes]:
    """The encoding a byte order mark names, and the data without it (``None`` and ``data`` if none).

    A BOM outranks the ``Content-Type`` charset: it is in the bytes themselves, and a proxy that
    adds a UTF-8 BOM (docs/wire.md) does not fix the header.
    """
    if data[:2] in _BOM_STARTS:
        for bom, encoding in _BOMS:
            if data.startswith(bom):
                return encoding, data[len(bom) :]
    return None, data


#: Python codecs that are text encodings by name but decode no charset a server labels a body with:
#: they turn escapes or ASCII-compatible forms into text (``\u`` escapes, IDNA, punycode) or refuse
#: everything (``undefined``).
_NOT_CHARSETS = frozenset(("unicode_escape", "raw_unicode_escape", "idna", "punycode", "undefined"))


@functools.lru_cache(maxsize=64)
def normalize_charset(charset: str) -> str:
    """Python's canonical codec name for a charset label (``UTF-8`` -> ``utf-8``).

    Only text encodings are charsets: Python also has codecs from bytes to bytes (``base64``,
    ``zlib``, ``rot13``, ``hex``, ``uu``) and a few text codecs that are not character sets
    (``punycode``, ``unicode_escape``); a label naming one of those is refused like an unknown one.

    Raises:
        DecodeError: the label names no character set.
    """
    label = charset.strip().strip('"')
    try:
        name = codecs.lookup(label).name
        "".encode(name)  # raises LookupError for a codec that is not a text encoding
    except (LookupError, ValueError, TypeError):
        raise DecodeError(f"unknown charset {charset[:40]!r}") from None
    if name.replace("-", "_") in _NOT_CHARSETS:
        raise DecodeError(f"{charset[:40]!r} is not a character set a body can be in")
    return name


_BOM_LEADS = frozenset(bom[0] for bom, _ in _BOMS)
_UTF8_LABELS = frozenset(("utf-8", "UTF-8", "utf8", "UTF8"))


def is_plain_utf8(data: bytes, charset: str | None) -> bool:
    """True for the common case, checked cheaply: no BOM, and no charset or a UTF-8 one."""
    return (charset is None or charset in _UTF8_LABELS) and (not data or data[0] not in _BOM_LEADS)


def body_text(data: bytes, charset: str | None) -> str:
    """A text body as ``str``: by its BOM, else its ``Content-Type`` charset, else UTF-8.

    Raises:
        DecodeError: an unknown charset, or bytes that are not valid in the charset.
    """
    if is_plain_utf8(data, charset):
        return decode_text(data, "utf-8")
    encoding, body = split_bom(data)
    if encoding is None:
        encoding = normalize_charset(charset) if charset else "utf-8"
    return decode_text(body, encoding)


def decode_text(data: bytes, encoding: str) -> str:
    """Bytes to text, strictly; the error says at which byte the encoding broke."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DecodeError(f"body is not valid {encoding}: {exc.reason} at byte {exc.start}") from exc
    except (ValueError, LookupError, TypeError) as exc:  # a codec that fails in its own way
        raise DecodeError(f"body is not valid {encoding}: {type(exc).__name__}") from exc
