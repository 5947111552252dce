"""Strict readers and writers for the scalar values on the wire: datetimes, decimals, integers.

The readers take an ignored second argument so that cattrs can call them as hooks directly: on the
decode path every call counts.

Python's own parsers are too lenient for a tolerant-but-strict reader: ``int()`` takes ``" 1_0 "``
and Arabic-Indic digits, ``Decimal()`` takes ``"NaN"`` and ``"1e5"``, ``datetime.fromisoformat``
takes ``"2018-01-25 14:32"`` and week dates. The server sends none of those (docs/wire.md), so each reader
here accepts exactly the server's forms and raises :class:`InvalidValue` for anything else.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

__all__ = [
    "NET_DECIMAL_MAX",
    "SURELY_IN_RANGE",
    "InvalidValue",
    "check_net_decimal",
    "format_date",
    "format_datetime",
    "format_decimal",
    "format_minutes",
    "net_decimal",
    "parse_date",
    "parse_datetime",
    "parse_decimal_text",
    "parse_int_text",
    "parse_minutes",
    "read_optional_datetime",
    "scalar_text",
    "short_repr",
]


class InvalidValue(ValueError):
    """A wire value that is not of the expected form; the message says what was expected."""


def short_repr(value: object) -> str:
    """A short, safe rendering of a wire value for an error message."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# docs/wire.md, "Datetime rules": no suffix, `Z` or `+hh:mm`, 0 to 7 fractional digits. Used to word
# the error; the hot path checks the same shape more cheaply (see parse_datetime).
_DATETIME_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,7})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
_fromisoformat = datetime.fromisoformat


def parse_datetime(text: str) -> datetime:
    """Read a .NET round-trip datetime that must be there (see :func:`read_optional_datetime`)."""
    value = read_optional_datetime(text)
    if value is None:
        raise InvalidValue("expected a datetime, got null")
    return value


def read_optional_datetime(text: Any, _: object = None) -> datetime | None:
    """Read a .NET round-trip datetime, keeping its kind; None stays None. A cattrs hook as is.

    No suffix gives a naive datetime (.NET "Unspecified": server-local time), ``Z`` an aware one in
    UTC, ``+hh:mm`` an aware one at that fixed offset. .NET has 100 ns ticks and Python has
    microseconds: a 7th fractional digit is **truncated**, never rounded, so a value never moves to
    the next second (or day).

    Raises:
        InvalidValue: the text is not in the server's format, or names an impossible date.
    """
    if text is None:
        return None
    try:
        value = _fromisoformat(text)
    except TypeError as exc:
        raise InvalidValue(f"expected a datetime string, got {short_repr(text)}") from exc
    except ValueError as exc:
        if _DATETIME_SHAPE.fullmatch(text) is not None:  # the shape is right, the calendar is not
            raise InvalidValue(f"impossible datetime {text!r}: {exc}") from exc
        raise _not_a_datetime(text) from exc
    # fromisoformat validated the ASCII digits and the calendar, but it also takes forms the server
    # never writes: any separator, week dates, basic format, ',' fractions, more than 7 fractional
    # digits, `+hh`, `+hhmm` and `+hh:mm:ss` offsets. Only the server's shape gets through:
    # '-' '-' 'T' ':' ':' at 4, 7, 10, 13, 16, then an optional fraction, then `Z` or `+hh:mm`.
    shape = text[4:17:3]  # text is a str: fromisoformat took it
    if value.tzinfo is None and shape == "--T::":  # the usual case first: server-local time
        end = len(text)
        if end == 19 or (19 < end <= 27 and text[19] == "."):
            return value
        raise _not_a_datetime(text)
    return _aware(text, value, shape)


def _aware(text: str, value: datetime, shape: str) -> datetime:
    """The rest of :func:`read_optional_datetime`: an offset or ``Z``, after the server's shape."""
    if shape != "--T::" or value.tzinfo is None:
        raise _not_a_datetime(text)
    end = len(text)
    if text[-1] == "Z":
        end -= 1
    elif text[-3] == ":" and text[-6] in "+-":
        end -= 6
    else:
        raise _not_a_datetime(text)
    if end != 19 and not (19 < end <= 27 and text[19] == "."):  # `14:32:Z` ends before 19
        raise _not_a_datetime(text)
    return value


def _not_a_datetime(text: str) -> InvalidValue:
    return InvalidValue(f"expected a datetime like 2018-01-25T14:32:12.456, got {short_repr(text)}")


def format_datetime(value: datetime) -> str:
    """Write a datetime as the server's serializers do (``yyyy-MM-ddTHH:mm:ss.FFFFFFFK``).

    Trailing zeros of the fraction are dropped; UTC is written ``Z``, other aware values get their
    offset as ``+hh:mm``, naive values get no suffix.
    """
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    if value.tzinfo is None:
        return text
    if value.tzinfo is UTC:
        return text + "Z"
    offset = value.utcoffset()
    if offset is None:
        return text
    seconds = int(offset.total_seconds())
    if seconds % 60 or offset.microseconds:
        raise InvalidValue(f"a UTC offset of {offset} has seconds, which .NET cannot carry")
    sign = "-" if seconds < 0 else "+"
    hours, minutes = divmod(abs(seconds) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


# docs/wire.md: "decimal keeps its scale and never uses an exponent"; a comma is never valid.
_DECIMAL_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

#: The largest magnitude of .NET's ``decimal`` (a 96-bit integer); its scale is 0 to 28.
NET_DECIMAL_MAX = Decimal(2**96 - 1)
_NET_DECIMAL_MAX_SCALE = 28
#: A decimal text this short cannot leave .NET's range: at most 28 digits are under 1e28 (the maximum
#: is about 7.9e28, 29 digits) and have at most 27 places. Only longer ones are checked.
SURELY_IN_RANGE = 28


def net_decimal(text: str) -> Decimal:
    """``Decimal(text)`` for a plain-notation text, refused outside .NET ``decimal``'s range.

    The server cannot send a value .NET's decimal cannot hold; refusing one here also keeps
    arithmetic on it (a batch's credit ledger) from overflowing Python's decimal context.
    """
    value = Decimal(text)
    if len(text) > SURELY_IN_RANGE:
        check_net_decimal(value)
    return value


def check_net_decimal(value: Decimal) -> Decimal:
    """``value`` if .NET's ``decimal`` can hold it; :class:`InvalidValue` otherwise."""
    exponent = value.as_tuple().exponent
    # copy_abs, not abs(): abs() rounds to the context's 28 digits, and .NET's maximum has 29.
    too_fine = not isinstance(exponent, int) or -exponent > _NET_DECIMAL_MAX_SCALE
    if too_fine or value.copy_abs() > NET_DECIMAL_MAX:
        shown = str(value) if len(str(value)) <= 40 else f"{str(value)[:37]}..."
        raise InvalidValue(f"{shown} is outside the range of .NET's decimal (28 places, about 7.9e28)")
    return value


def parse_decimal_text(text: str, _: object = None) -> Decimal:
    """Read a DataContract ``decimal``: optional minus, digits, optional fraction. Scale is kept."""
    if type(text) is not str or _DECIMAL_TEXT.fullmatch(text) is None:
        raise InvalidValue(f"expected a decimal like 8.50, got {short_repr(text)}")
    return net_decimal(text)


def parse_int_text(text: str, _: object = None) -> int:
    """Read a DataContract integer: optional minus and ASCII digits, nothing else."""
    try:
        if text.isdigit() and text.isascii() and len(text) < 19:  # the common case, cheaply
            return int(text)
    except AttributeError:  # a nil element (None) where the contract has a plain integer
        raise InvalidValue(f"expected an integer, got {short_repr(text)}") from None
    if type(text) is not str:
        raise InvalidValue(f"expected an integer, got {short_repr(text)}")
    digits = text[1:] if text[:1] == "-" else text
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidValue(f"expected an integer, got {short_repr(text)}")
    try:
        return int(text)
    except ValueError as exc:  # more digits than Python's int-from-text limit allows
        raise InvalidValue(f"integer too long ({len(text)} digits)") from exc


def scalar_text(value: object) -> str:
    """A scalar as DataContract writes it as text, unescaped: ``true``/``false``, integers (an enum
    by its value), decimals with their scale and no forced point, .NET datetimes, ``YYYY-MM-DD``
    dates. The XML writer escapes what it gets; a query string takes it as is.

    Raises:
        TypeError: not a scalar of the wire.
    """
    # bool before int, and enums by their value: BookingStatus is a str, CallMethod an int.
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, str):
        return str(value)
    if isinstance(value, Decimal):
        return format_decimal(value, point=False)
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return format_date(value)
    raise TypeError(f"cannot write {type(value).__name__} as text on the wire")


def format_decimal(value: Decimal, *, point: bool) -> str:
    """Write a decimal in plain notation, keeping its scale.

    Args:
        point: write a decimal point even for an integral value (Json.NET writes ``8`` as ``8.0``;
            DataContractSerializer writes ``8``).
    """
    if not value.is_finite():
        raise InvalidValue(f"{value} is not a number .NET's decimal can carry")
    text = format(value, "f")
    if point and "." not in text:
        text += ".0"
    return text


# Requests carry datetimes as `YYYY-MM-DD HH:MM`, server-local (docs/api.md, "CreateBooking request"),
# and dates as `YYYY-MM-DD` (MadeBookings' StartDate).
_MINUTES_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")
_DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def format_minutes(value: datetime) -> str:
    """A request datetime: ``YYYY-MM-DD HH:MM``. It must be naive (server-local) already.

    Raises:
        InvalidValue: ``value`` is aware (the service converts to server-local time first).
    """
    if value.tzinfo is not None:
        raise InvalidValue(f"a request datetime is server-local and naive, got {value.isoformat()}")
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d} {value.hour:02d}:{value.minute:02d}"


def parse_minutes(text: str) -> datetime:
    """Read a request datetime, ``YYYY-MM-DD HH:MM``, as a naive datetime."""
    if _MINUTES_SHAPE.fullmatch(text) is None:
        raise InvalidValue(f"expected a datetime like 2018-01-25 14:32, got {short_repr(text)}")
    try:
        return datetime.strptime(text, "%Y-%m-%d %H:%M")
    except ValueError as exc:
        raise InvalidValue(f"impossible datetime {text!r}") from exc


def format_date(value: date) -> str:
    """A request date: ``YYYY-MM-DD``."""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def parse_date(text: str) -> date:
    """Read a request date, ``YYYY-MM-DD``."""
    if _DATE_SHAPE.fullmatch(text) is None:
        raise InvalidValue(f"expected a date like 2018-01-25, got {short_repr(text)}")
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidValue(f"impossible date {text!r}") from exc
