"""The typing step: from parsed wire values to models, with cattrs.

Each codec parses its format into plain values keyed by wire name (JSON: what ``json.loads`` gives;
XML: element text as ``str``, nested objects as dicts), then a converter built here turns them into
models. The two converters differ only in how they read leaf values (a JSON integer is an ``int``,
an XML integer is text), which each codec passes in as :class:`LeafReaders`; everything else
(renames from the contracts, strictness, tolerant enums, optional members) is shared.

The converter runs with cattrs' detailed validation, which costs nothing when the input is good
(Python 3.11 try blocks are free) and tells us the attribute path when it is not.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import attrs
from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from ..errors import DecodeError
from ..models import BookingStatus, CallMethod
from ._contracts import CONTRACTS, Contract
from ._scalars import (
    InvalidValue,
    parse_date,
    parse_datetime,
    parse_minutes,
    read_optional_datetime,
    short_repr,
)

__all__ = ["SCALARS", "LeafReaders", "Structurer", "make_converter"]

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]


@attrs.frozen
class LeafReaders:
    """How one format reads its leaf values; each hook takes ``(value, type)`` as cattrs calls it."""

    int: Hook
    decimal: Hook
    bool: Hook


def _read_str(value: Any, _: Any) -> str:
    if type(value) is not str:
        raise InvalidValue(f"expected a string, got {short_repr(value)}")
    return value


def _read_optional_str(value: Any, _: Any) -> str | None:
    # One call per member on the hot path: optional strings are most of a MadeBooking.
    if value is None or type(value) is str:
        return value
    raise InvalidValue(f"expected a string or null, got {short_repr(value)}")


def _read_datetime(value: Any, _: Any) -> datetime:
    if type(value) is not str:
        raise InvalidValue(f"expected a datetime string, got {short_repr(value)}")
    return parse_datetime(value)


def _read_minutes(value: Any, _: Any) -> datetime | None:
    """A request datetime, ``YYYY-MM-DD HH:MM`` (server-local, naive); None stays None."""
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidValue(f"expected a datetime like 2018-01-25 14:32, got {short_repr(value)}")
    return parse_minutes(value)


def _read_date(value: Any, _: Any) -> date | None:
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidValue(f"expected a date like 2018-01-25, got {short_repr(value)}")
    return parse_date(value)


_STATUS_BY_VALUE: dict[str, BookingStatus] = {s.value: s for s in BookingStatus}
_METHOD_BY_VALUE: dict[int, CallMethod] = {m.value: m for m in CallMethod}


def _read_status(value: Any, _: Any) -> BookingStatus | str:
    # A status the server adds later stays the raw string (docs/public-api.md, "Models").
    if type(value) is not str:
        raise InvalidValue(f"expected a status string, got {short_repr(value)}")
    return _STATUS_BY_VALUE.get(value, value)


def _read_model_state(value: Any, _: Any) -> dict[str, list[str]]:
    if type(value) is not dict:
        raise InvalidValue(f"expected an object of message lists, got {short_repr(value)}")
    for key, messages in value.items():
        if type(messages) is not list or any(type(m) is not str for m in messages):
            raise InvalidValue(f"ModelState[{key!r}]: expected a list of strings, got {short_repr(messages)}")
    return value


def _is_optional(annotation: Any) -> bool:
    if not isinstance(annotation, types.UnionType):
        return False
    args = typing.get_args(annotation)
    return len(args) == 2 and type(None) in args


def make_converter(leaves: LeafReaders) -> Converter:
    """A converter for one format, built from its leaf readers and the shared contracts."""
    converter = Converter(detailed_validation=True, forbid_extra_keys=False)

    def optional_factory(annotation: Any) -> Hook:
        inner_type = next(a for a in typing.get_args(annotation) if a is not type(None))
        inner = converter.get_structure_hook(inner_type)

        def read_optional(value: Any, _: Any) -> Any:
            # Absent and null both mean None (docs/design.md, "tolerant reader").
            return None if value is None else inner(value, inner_type)

        return read_optional

    # cattrs tries the most recently registered predicate first: the generic optional hook goes
    # first, so that the one-call hooks for optional strings, datetimes and models below win.
    converter.register_structure_hook_factory(_is_optional, optional_factory)

    converter.register_structure_hook(str, _read_str)
    converter.register_structure_hook(int, leaves.int)
    converter.register_structure_hook(bool, leaves.bool)
    converter.register_structure_hook(Decimal, leaves.decimal)
    converter.register_structure_hook(datetime, _read_datetime)
    converter.register_structure_hook_func(lambda t: t == (str | None), _read_optional_str)
    converter.register_structure_hook_func(lambda t: t == (datetime | None), read_optional_datetime)
    converter.register_structure_hook_func(lambda t: t in (date, date | None), _read_date)
    converter.register_structure_hook_func(lambda t: t == dict[str, list[str]], _read_model_state)
    converter.register_structure_hook_func(lambda t: t == (BookingStatus | str), _read_status)
    read_int = leaves.int

    def read_method(value: Any, _: Any) -> CallMethod | int:
        number: int = read_int(value, int)
        return _METHOD_BY_VALUE.get(number, number)

    converter.register_structure_hook_func(lambda t: t == (CallMethod | int), read_method)

    list_hooks: dict[type, Hook] = {}
    for contract in CONTRACTS.values():
        _register_model(converter, contract, list_hooks)
    return converter


def _register_model(converter: Converter, contract: Contract, list_hooks: dict[type, Hook]) -> None:
    """Hooks for ``Model``, ``Model | None`` and ``tuple[Model, ...]``, each one call deep around
    cattrs' generated code."""
    model, name = contract.model, contract.name
    generated: Hook | None = None  # bound below; the hooks read it when called, so recursion works

    def read_model(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            if type(value) is list and contract.bare_list is not None:
                return bare_list(value)
            raise InvalidValue(f"expected a {name} object, got {short_repr(value)}")
        return generated(value, model)  # type: ignore[misc]

    def read_optional_model(value: Any, _: Any) -> Any:
        if value is None:
            return None
        if type(value) is not dict:
            raise InvalidValue(f"expected a {name} object or null, got {short_repr(value)}")
        return generated(value, model)  # type: ignore[misc]

    def read_list(value: Any, _: Any) -> tuple[Any, ...]:
        # A null or absent list is an empty one: the model's type has no None (docs/wire.md).
        if value is None:
            return ()
        if type(value) is not list:
            raise InvalidValue(f"expected a list of {name}, got {short_repr(value)}")
        items, errors = [], []
        for index, item in enumerate(value):
            try:
                items.append(read_model(item, model))
            except Exception as exc:  # each bad item is reported with its index
                exc.add_note(IterableValidationNote(f"Structuring item @ index {index}", index, model))
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring a list of {name}", errors, tuple)
        return tuple(items)

    def bare_list(value: list[Any]) -> Any:
        # A bare list answer is one page of the envelope (docs/api.md, "MadeBookings envelope").
        assert contract.bare_list is not None
        member = contract.by_attribute[contract.bare_list]
        try:
            items = list_hooks[member.model](value, None)  # type: ignore[index]
        except IterableValidationError as exc:
            exc.add_note(AttributeValidationNote(f"Structuring {member.attribute}", member.attribute, tuple))
            raise ClassValidationError(f"While structuring {name}", [exc], model) from None
        return model(**{contract.bare_list: items, **contract.bare_list_defaults})

    converter.register_structure_hook(model, read_model)
    converter.register_structure_hook_func(lambda t: t == (model | None), read_optional_model)
    converter.register_structure_hook_func(lambda t: t == tuple[model, ...], read_list)  # type: ignore[valid-type]
    list_hooks[model] = read_list
    renames: dict[str, Any] = {
        m.attribute: override(rename=m.wire, struct_hook=_read_minutes if m.minutes else None)
        for m in contract.members
    }
    generated = make_dict_structure_fn(model, converter, **renames)


#: The scalar roots a body may be decoded into, besides the models (GetCurrentCreditBalance).
SCALARS: tuple[type, ...] = (Decimal, int, str, bool)


class Structurer:
    """Types parsed wire values with one format's converter; the codecs' typing step."""

    def __init__(self, leaves: LeafReaders) -> None:
        self._leaves = leaves
        self._converter: Converter | None = None
        self._hooks: dict[Any, Hook] = {}

    @property
    def converter(self) -> Converter:
        """The format's converter, built on first use: cattrs compiles code for every model, and an
        ``import aw_async`` that never decodes (a CLI's ``--help``) should not pay for it."""
        if self._converter is None:
            self._converter = make_converter(self._leaves)
        return self._converter

    def __call__(self, value: object, into: type[T]) -> T:
        """Type ``value`` as ``into``.

        Raises:
            DecodeError: naming the wire path of the first problem (``Candidate.UserID``) and how
                many more there were.
            TypeError: ``into`` is neither a model of the package nor one of :data:`SCALARS`.
        """
        hook = self._hooks.get(into)
        if hook is None:
            hook = self._hook_for(into)
        try:
            return typing.cast(T, hook(value, into))
        except (ClassValidationError, IterableValidationError) as exc:
            raise _decode_error(exc, into) from exc
        except InvalidValue as exc:
            raise DecodeError(f"invalid {_name(into)}: {exc}") from exc

    def _hook_for(self, into: Any) -> Hook:
        if into not in CONTRACTS and into not in SCALARS:
            raise TypeError(f"cannot decode into {into!r}: not a model of aw_async nor one of {SCALARS}")
        hook = self._hooks[into] = self.converter.get_structure_hook(into)
        return hook


def _name(into: type) -> str:
    return getattr(into, "__name__", str(into))


def _decode_error(group: ClassValidationError | IterableValidationError, into: type) -> DecodeError:
    path = ""
    leaf: BaseException = group
    while isinstance(leaf, ClassValidationError | IterableValidationError):
        contract = CONTRACTS.get(leaf.cl) if isinstance(leaf, ClassValidationError) else None
        child = leaf.exceptions[0]
        for note in getattr(child, "__notes__", ()):
            if isinstance(note, AttributeValidationNote):
                member = contract.by_attribute.get(note.name) if contract else None
                wire = member.wire if member else note.name
                path = f"{path}.{wire}" if path else wire
                break
            if isinstance(note, IterableValidationNote):
                path += f"[{note.index}]"  # Bookings[3].Credits (docs/wire.md, "Collections")
                break
        leaf = child
    problems = _count_leaves(group)
    if isinstance(leaf, KeyError):
        reason = "missing required field"
    elif isinstance(leaf, InvalidValue):
        reason = str(leaf)
    else:
        reason = f"{type(leaf).__name__}: {leaf}"
    more = f" (and {problems - 1} more problem{'s' if problems > 2 else ''})" if problems > 1 else ""
    where = f" at {path}" if path else ""
    return DecodeError(f"invalid {_name(into)}{where}: {reason}{more}", path=path or None)


def _count_leaves(exc: BaseException) -> int:
    if isinstance(exc, ClassValidationError | IterableValidationError):
        return sum(_count_leaves(e) for e in exc.exceptions)
    return 1
