"""How each member type is read from the wire: one table, :data:`READERS`, which the general path
(:mod:`._structure`, for JSON, XML and query strings) and both fast paths read.

A row is one member type, as the models annotate it, and says how a value of that type is read in
each form the wire gives it:

- ``text``: from text, an XML element's or a query parameter's. The general path's hook for XML and
  query strings, and the XML fast path's reader (which calls it only with text, never None).
- ``json``: from a value ``json.loads`` gave; the JSON general path's hook.
- ``json_fast``: the type msgspec decodes the member into, and the reader of what msgspec gives
  (None: msgspec's value as it is); the JSON fast path's. A row without it is a type the fast paths
  do not serve (requests' dates, ``HttpError``'s ModelState): a fast path asked to serve one fails
  when it is built, loudly, rather than leaving its model to the general path in silence.

Every hook takes ``(value, type)`` as cattrs calls it (the second argument is ignored and may be
left out), and raises :class:`~._scalars.InvalidValue` with the wording an error shows. A new member
type is one new row here: without it a fast path raises ``KeyError`` when it is built (which every
test run does), and the general path would fall back to cattrs' own, lenient, structuring.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import attrs
import msgspec

from ..models import BookingStatus, CallMethod
from ._scalars import (
    InvalidValue,
    check_net_decimal,
    net_decimal,
    parse_date,
    parse_datetime,
    parse_decimal_text,
    parse_int_text,
    parse_minutes,
    read_optional_datetime,
    short_repr,
)

__all__ = [
    "READERS",
    "Hook",
    "TypeReaders",
    "UnusualNumber",
    "decimal_from_raw",
    "method_of",
    "read_minutes",
    "status_of",
]

Hook = Callable[..., Any]
"""A reader: ``(value, type=None) -> value``, raising InvalidValue."""

_STATUS_BY_VALUE: dict[str, BookingStatus] = {s.value: s for s in BookingStatus}
_METHOD_BY_VALUE: dict[int, CallMethod] = {m.value: m for m in CallMethod}


def status_of(value: str) -> BookingStatus | str:
    """The status a string names; one the server adds later stays the raw string (docs/public-api.md,
    "Models")."""
    return _STATUS_BY_VALUE.get(value, value)


def method_of(number: int) -> CallMethod | int:
    """The call method a number names; one the server adds later stays the raw number."""
    return _METHOD_BY_VALUE.get(number, number)


# Readers that are the same for text and JSON: the value is a string in both.


def read_str(value: Any, _: Any = None) -> str:
    if type(value) is not str:
        raise InvalidValue(f"expected a string, got {short_repr(value)}")
    return value


def read_optional_str(value: Any, _: Any = None) -> str | None:
    # One call per member on the hot path: optional strings are most of a MadeBooking.
    if value is None or type(value) is str:
        return value
    raise InvalidValue(f"expected a string or null, got {short_repr(value)}")


def read_datetime(value: Any, _: Any = None) -> datetime:
    if type(value) is not str:
        raise InvalidValue(f"expected a datetime string, got {short_repr(value)}")
    return parse_datetime(value)


def read_minutes(value: Any, _: Any = None) -> datetime | None:
    """A request datetime, ``YYYY-MM-DD HH:MM`` (server-local, naive); None stays None. A member's
    rule (``Member.minutes``), not a type's: the general path applies it member by member."""
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidValue(f"expected a datetime like 2018-01-25 14:32, got {short_repr(value)}")
    return parse_minutes(value)


def read_date(value: Any, _: Any = None) -> date | None:
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidValue(f"expected a date like 2018-01-25, got {short_repr(value)}")
    return parse_date(value)


def read_status(value: Any, _: Any = None) -> BookingStatus | str:
    if type(value) is not str:
        raise InvalidValue(f"expected a status string, got {short_repr(value)}")
    return status_of(value)


def read_model_state(value: Any, _: Any = None) -> dict[str, list[str]]:
    if type(value) is not dict:
        raise InvalidValue(f"expected an object of message lists, got {short_repr(value)}")
    for key, messages in value.items():
        if type(messages) is not list or any(type(m) is not str for m in messages):
            raise InvalidValue(f"ModelState[{key!r}]: expected a list of strings, got {short_repr(messages)}")
    return value


# Text only: an XML element's or a query parameter's (parse_int_text and parse_decimal_text are
# in _scalars, beside the other strict parsers).

_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # xs:boolean's four spellings


def read_text_bool(value: Any, _: Any = None) -> bool:
    try:
        return _BOOLEANS[value]
    except (KeyError, TypeError):  # TypeError: not a string at all
        raise InvalidValue(f"expected true or false, got {short_repr(value)}") from None


def read_text_method(value: Any, _: Any = None) -> CallMethod | int:
    return method_of(parse_int_text(value))


# JSON only: what json.loads gives.


class UnusualNumber(str):
    """A JSON number .NET's decimal never writes (an exponent, more digits than it holds), kept as
    its text by the JSON general path's parser: refused only if a decimal member reads it, so that an
    unknown member holding one (a double the server adds later) does not make the whole document
    unreadable."""


def read_json_int(value: Any, _: Any = None) -> int:
    if type(value) is not int:  # `type is`, not isinstance: JSON true is not the integer 1
        raise InvalidValue(f"expected an integer, got {short_repr(value)}")
    return value


def read_json_decimal(value: Any, _: Any = None) -> Decimal:
    if type(value) is Decimal:
        return value
    if type(value) is int:  # the vendor's samples write `"Credits": 8` (docs/wire.md)
        return check_net_decimal(Decimal(value))
    if type(value) is UnusualNumber:
        if "e" in value or "E" in value:  # Json.NET writes decimals in plain notation (docs/wire.md)
            raise InvalidValue(f"{value[:40]!r}: the server writes decimals without an exponent")
        return net_decimal(value)  # plain, but long: within .NET's range, or refused
    raise InvalidValue(f"expected a decimal number, got {short_repr(value)}")


def read_json_bool(value: Any, _: Any = None) -> bool:
    if type(value) is not bool:
        raise InvalidValue(f"expected true or false, got {short_repr(value)}")
    return value


def read_json_method(value: Any, _: Any = None) -> CallMethod | int:
    return method_of(read_json_int(value))


# The JSON fast path's: money is read from the number's own text (msgspec.Raw), never a float.

_NUMBER_START = frozenset("-0123456789")


def decimal_from_raw(raw: msgspec.Raw) -> Decimal:
    """The decimal a JSON number spells, as the general path reads it; InvalidValue for anything
    else (a string, null, an exponent), which the general path then words.

    The general path reads a number without a fraction as an ``int`` first, so ``-0`` is
    ``Decimal('0')`` there, not ``Decimal('-0')``: this reader gives the same.
    """
    return _decimal_from_text(str(raw, "ascii", "replace"))


def optional_decimal_from_raw(raw: msgspec.Raw) -> Decimal | None:
    # "replace": only a string can hold a byte past ASCII, and a string is refused for its quote.
    text = str(raw, "ascii", "replace")
    return None if text == "null" else _decimal_from_text(text)


def _decimal_from_text(text: str) -> Decimal:
    # Raw holds one valid JSON value: one that starts like a number is a number, and it is in
    # plain notation unless it has an exponent.
    if text[0] not in _NUMBER_START or "e" in text or "E" in text:
        raise InvalidValue("not a decimal in plain notation")
    if text == "-0":  # JSON spells an integral negative zero no other way (no leading zeros)
        return _ZERO
    return net_decimal(text)


_ZERO = Decimal(0)


def optional(read: Hook) -> Hook:
    """``read`` for an optional member: None stays None (docs/design.md, "Tolerant reader")."""

    def read_optional(value: Any, _: Any = None) -> Any:
        return None if value is None else read(value)

    return read_optional


@attrs.frozen
class TypeReaders:
    """How one member type is read from the wire (see the module's docstring)."""

    text: Hook
    json: Hook
    json_fast: tuple[Any, Callable[[Any], Any] | None] | None = None
    """msgspec's type for the member, and the reader of what msgspec gives (None: as it is)."""
    text_is_the_value: bool = False
    """The text is the value, as it is: the XML fast path sets it without a call."""


#: One row per member type the models use (docs/public-api.md, "Models").
READERS: dict[Any, TypeReaders] = {
    str: TypeReaders(read_str, read_str, (str, None), text_is_the_value=True),
    str | None: TypeReaders(read_optional_str, read_optional_str, (str | None, None), text_is_the_value=True),
    int: TypeReaders(parse_int_text, read_json_int, (int, None)),
    int | None: TypeReaders(optional(parse_int_text), optional(read_json_int), (int | None, None)),
    Decimal: TypeReaders(parse_decimal_text, read_json_decimal, (msgspec.Raw, decimal_from_raw)),
    Decimal | None: TypeReaders(
        optional(parse_decimal_text), optional(read_json_decimal), (msgspec.Raw, optional_decimal_from_raw)
    ),
    bool: TypeReaders(read_text_bool, read_json_bool, (bool, None)),
    datetime: TypeReaders(read_datetime, read_datetime, (str, parse_datetime)),
    datetime | None: TypeReaders(
        read_optional_datetime, read_optional_datetime, (str | None, read_optional_datetime)
    ),
    BookingStatus | str: TypeReaders(read_status, read_status, (str, status_of)),
    CallMethod | int: TypeReaders(read_text_method, read_json_method, (int, method_of)),
    # Requests' and HttpError's types: the general path alone reads them.
    date: TypeReaders(read_date, read_date),
    date | None: TypeReaders(read_date, read_date),
    dict[str, list[str]]: TypeReaders(read_model_state, read_model_state),
}
