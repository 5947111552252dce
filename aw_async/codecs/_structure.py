"""The typing step: from parsed wire values to models, with cattrs.

Each codec parses its format into plain values keyed by wire name (JSON: what ``json.loads`` gives;
XML: element text as ``str``, nested objects as dicts; a query string: text), then a converter built
here turns them into models. The converters differ only in the form their leaf values take, text or
JSON, and read each member type by its row in the reader table (:mod:`._readers`), which the fast
paths read too; everything else (renames from the contracts, strictness, tolerant enums, optional
members) is shared. :data:`JSON_STRUCTURER` and :data:`TEXT_STRUCTURER` are the two typing steps.

The converter runs with cattrs' detailed validation, which costs nothing when the input is good
(Python 3.11 try blocks are free) and tells us the attribute path when it is not.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, TypeVar

from cattrs import Converter
from cattrs.errors import (
    AttributeValidationNote,
    ClassValidationError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from ..errors import DecodeError
from ._contracts import CONTRACTS, Contract
from ._readers import READERS, read_minutes
from ._scalars import InvalidValue, short_repr

__all__ = ["JSON_STRUCTURER", "SCALARS", "TEXT_STRUCTURER", "Form", "Structurer", "make_converter"]

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]
Form = Literal["text", "json"]
"""The form leaf values take: text (XML, query strings) or what ``json.loads`` gives."""


def _is_optional(annotation: Any) -> bool:
    if not isinstance(annotation, types.UnionType):
        return False
    args = typing.get_args(annotation)
    return len(args) == 2 and type(None) in args


def _equal_to(annotation: Any) -> Callable[[Any], bool]:
    return lambda candidate: bool(candidate == annotation)


def make_converter(form: Form) -> Converter:
    """A converter for one form of leaf values, from the reader table and the shared contracts."""
    converter = Converter(detailed_validation=True, forbid_extra_keys=False)

    def optional_factory(annotation: Any) -> Hook:
        inner_type = next(a for a in typing.get_args(annotation) if a is not type(None))
        inner = converter.get_structure_hook(inner_type)

        def read_optional(value: Any, _: Any) -> Any:
            # Absent and null both mean None (docs/design.md, "tolerant reader").
            return None if value is None else inner(value, inner_type)

        return read_optional

    # cattrs tries the most recently registered predicate first: the generic optional hook goes
    # first, so that the reader table's hooks and the models' below win.
    converter.register_structure_hook_factory(_is_optional, optional_factory)
    for annotation, readers in READERS.items():
        hook = readers.text if form == "text" else readers.json
        if isinstance(annotation, type):
            converter.register_structure_hook(annotation, hook)
        else:  # a union or a generic: matched by equality
            converter.register_structure_hook_func(_equal_to(annotation), hook)

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
        m.attribute: override(rename=m.wire, struct_hook=read_minutes if m.minutes else None)
        for m in contract.members
    }
    generated = make_dict_structure_fn(model, converter, **renames)


#: The scalar roots a body may be decoded into, besides the models (GetCurrentCreditBalance).
SCALARS: tuple[type, ...] = (Decimal, int, str, bool)


class Structurer:
    """Types parsed wire values with one form's converter; the codecs' typing step."""

    def __init__(self, form: Form) -> None:
        self._form: Form = form
        self._converter: Converter | None = None
        self._hooks: dict[Any, Hook] = {}

    @property
    def converter(self) -> Converter:
        """The format's converter, built on first use: cattrs compiles code for every model, and an
        ``import aw_async`` that never decodes (a CLI's ``--help``) should not pay for it."""
        if self._converter is None:
            self._converter = make_converter(self._form)
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


#: The JSON codec's typing step: leaf values as ``json.loads`` gives them.
JSON_STRUCTURER = Structurer("json")
#: The typing step for values that are text: an XML element's, a query parameter's.
TEXT_STRUCTURER = Structurer("text")
