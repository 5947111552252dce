"""The JSON codec: what Json.NET under ASP.NET Web API reads and writes (docs/wire.md, "JSON").

Decoding: the body's charset comes from a BOM, else the ``Content-Type`` charset, else UTF-8. A
plain UTF-8 answer into one of the package's models first tries the fast path (:mod:`._json_fast`,
msgspec), which gives the same value or declines; everything else, and every refusal, is this
module's general path.
Numbers with a fraction become :class:`~decimal.Decimal` straight from their text, so money never
passes through ``float``; ``NaN`` and ``Infinity`` (which ``json.loads`` accepts and JSON does not)
are refused. Then the typing step (:mod:`._structure`) checks every member's type.

Encoding writes what Json.NET writes: members in declaration order, PascalCase names, ``null`` for
None, non-ASCII text as is, and a decimal point on every decimal (``8`` is written ``8.0``).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs

from ..errors import DecodeError, EncodeError
from ..models import ErrorBody
from ._base import DEFAULT_MAX_BODY_BYTES, body_text, check_size, is_plain_utf8
from ._contracts import CONTRACTS, Contract, contract_for
from ._fast import FastPathDeclined
from ._json_fast import fast_decode
from ._readers import UnusualNumber
from ._scalars import (
    SURELY_IN_RANGE,
    InvalidValue,
    format_date,
    format_datetime,
    format_decimal,
    format_minutes,
)
from ._structure import JSON_STRUCTURER

__all__ = ["JsonCodec"]

T = TypeVar("T")


def _parse_number_with_fraction(text: str) -> Decimal | UnusualNumber:
    """A JSON number with a fraction or an exponent, as the exact decimal it spells (never through
    ``float``); an unusual one stays text (see :class:`~._readers.UnusualNumber`)."""
    if len(text) <= SURELY_IN_RANGE and "e" not in text and "E" not in text:
        return Decimal(text)
    return UnusualNumber(text)


def _refuse_constant(name: str) -> object:
    raise InvalidValue(f"{name} is not a JSON number")


# Built once: json.loads with keyword arguments would build a new decoder on every call.
_decoder = json.JSONDecoder(parse_float=_parse_number_with_fraction, parse_constant=_refuse_constant)
_scan_once = _decoder.scan_once  # type: ignore[attr-defined]  # set in JSONDecoder.__init__


def _parse(text: str) -> Any:
    """``_decoder.decode(text)``, minus its two whitespace matches when there is no whitespace to
    skip (the server's compact output); anything else takes the full path, which also words the
    errors."""
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:  # leading whitespace, or no value at all
        return _decoder.decode(text)
    if end != len(text):  # trailing whitespace, or extra data
        return _decoder.decode(text)
    return value


_encode_string = json.JSONEncoder(ensure_ascii=False).encode


class JsonCodec:
    """Decodes and encodes the API's JSON bodies.

    Args:
        max_body_bytes: bodies larger than this are refused before parsing.
    """

    media_types: tuple[str, ...] = ("application/json", "text/json")

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"JsonCodec(max_body_bytes={self.max_body_bytes})"

    def decode(self, data: bytes, into: type[T], *, charset: str | None = None) -> T:
        """Decode a JSON body into ``into`` (a model, ``Decimal``, ``int``, ``str`` or ``bool``).

        Args:
            charset: the ``Content-Type`` charset, if the response named one; a BOM outranks it.

        Raises:
            DecodeError: the body is too large, not text in its charset, not JSON, or not a valid
                ``into``; the message says where.
        """
        if len(data) > self.max_body_bytes:
            check_size(data, self.max_body_bytes)
        if is_plain_utf8(data, charset):
            try:  # the fast path gives the general path's value, or declines (see _json_fast)
                return fast_decode(data, into)  # type: ignore[no-any-return]
            except FastPathDeclined:
                pass  # the general path decides, with its own wording
        text = body_text(data, charset)
        try:
            value = _parse(text)
        except json.JSONDecodeError as exc:
            raise DecodeError(
                f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
                line=exc.lineno,
                column=exc.colno,
            ) from exc
        except InvalidValue as exc:
            raise DecodeError(f"malformed JSON: {exc}") from exc
        except ValueError as exc:  # an integer longer than Python's int-from-text limit
            raise DecodeError(f"malformed JSON: {exc}") from exc
        except RecursionError as exc:
            raise DecodeError("malformed JSON: nested too deeply") from exc
        return JSON_STRUCTURER(value, into)

    def encode(self, value: object) -> bytes:
        """Encode a model or scalar as Json.NET would.

        Raises:
            EncodeError: the value cannot be written (a NaN decimal, text that is not Unicode).
        """
        try:
            return _write(value).encode("utf-8")
        except (InvalidValue, UnicodeEncodeError) as exc:  # TypeError stays: a value of no model
            raise EncodeError(f"cannot encode as JSON: {exc}") from exc


def _write(value: object) -> str:
    contract = CONTRACTS.get(type(value))
    if contract is not None:  # a model: a request body, the most frequent call by far
        if type(value) is ErrorBody:
            return _write_error_body(value, contract)
        return _write_object(value, contract)
    # Order matters: bool is an int, and the enums are str and int.
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return _encode_string(str(value))
    if isinstance(value, Decimal):
        return format_decimal(value, point=True)
    if isinstance(value, datetime):
        return f'"{format_datetime(value)}"'
    if isinstance(value, date):
        return f'"{format_date(value)}"'
    if isinstance(value, dict):
        return "{" + ",".join(f"{_encode_string(str(k))}:{_write(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_write(item) for item in value) + "]"
    if attrs.has(type(value)):
        return _write_object(value, contract_for(type(value)))  # not one of ours: a TypeError
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def _write_object(value: object, contract: Contract) -> str:
    parts = []
    for member in contract.members:
        item = getattr(value, member.attribute)
        text = f'"{format_minutes(item)}"' if member.minutes and item is not None else _write(item)
        parts.append(f'"{member.wire}":{text}')
    return "{" + ",".join(parts) + "}"


def _write_error_body(value: ErrorBody, contract: Contract) -> str:
    """ASP.NET's ``HttpError``, a dictionary: only the keys it has, in its order (docs/api.md,
    "Error bodies"). It is read like any model: absent and null are None either way."""
    parts = []
    for member in contract.members:
        item = getattr(value, member.attribute)
        if item is not None and item != {}:
            parts.append(f'"{member.wire}":{_write(item)}')
    return "{" + ",".join(parts) + "}"
