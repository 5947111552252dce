"""A fast path for JSON decoding: msgspec parses into structs generated from the contracts, and a
builder makes the models with the project's own strict readers.

It is a shortcut, never a second opinion (docs/design.md, "Fast paths"):

- it only ever says "here is the value" or "not me": whenever anything is unusual (a type msgspec
  does not expect, a decimal that is not plain digits, a datetime the strict reader refuses, a
  string msgspec cannot decode, a BOM or another charset), it declines, and the general path
  (:mod:`._structure`) decides, with its own wording, field path and count of problems;
- where it gives a value, that value equals the general path's (``==`` and ``repr``):
  ``tests/codecs/test_json_fast.py`` holds the two paths to it, with hypothesis;
- money is read from the number's own text (msgspec's ``Raw``), never through ``float``;
- what msgspec does not look at, the general path's parser still does: an unknown member is skipped
  by msgspec unread, so the body's UTF-8 and the length of its integers are checked here first (the
  general path refuses invalid UTF-8 anywhere, and an integer longer than Python's int-from-text
  limit, ``sys.get_int_max_str_digits()``); each check costs next to nothing on the usual body, which
  is ASCII and holds no long run of digits.

Each member is read by its type's row in the reader table (:mod:`._readers`), as the general path
reads it. A model is built without calling its ``__init__`` (each slot set directly, see
:mod:`._fast`).
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import msgspec

from ._contracts import Contract, Kind
from ._fast import (
    FAST_PATHS_ON,
    BuilderSource,
    FastDecode,
    compile_builder,
    declined,
    served_contracts,
    switched_off,
)
from ._readers import READERS
from ._scalars import InvalidValue

__all__ = ["fast_decode", "fast_models"]

_astuple = msgspec.structs.astuple

Reader = Callable[[Any], Any]


@attrs.frozen
class _Step:
    """How the builder sets one member: its reader (None: msgspec's value as it is), and whether
    msgspec may give None for it (a required member's struct field is never None)."""

    attribute: str
    reader: Reader | _ReadsNone | None
    optional: bool


@attrs.frozen
class _ReadsNone:
    """A reader that is given None too (a nested list's: a null list is an empty one), not skipped
    for it."""

    read: Reader


class _FastModel:
    """One contract's struct and builder."""

    def __init__(self, contract: Contract, served: dict[type, _FastModel]) -> None:
        self.model = contract.model
        fields: list[tuple[str, Any, Any]] = []
        steps: dict[str, _Step] = {}  # by wire name
        resolved = typing.get_type_hints(contract.model)
        for member in contract.members:
            annotation = resolved[member.attribute]
            optional = isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)
            if member.kind is Kind.OBJECT:
                assert member.model is not None
                nested = served[member.model]
                if optional:
                    fields.append((member.wire, nested.struct | None, None))
                else:
                    fields.append((member.wire, nested.struct, msgspec.NODEFAULT))
                steps[member.wire] = _Step(member.attribute, nested.build, optional)
            elif member.kind is Kind.LIST:
                assert member.model is not None
                item = served[member.model]
                fields.append((member.wire, list[item.struct] | None, None))  # type: ignore[name-defined]
                steps[member.wire] = _Step(member.attribute, _ReadsNone(item.build_list), optional=True)
            else:
                plan = READERS[annotation].json_fast if member.kind is Kind.SCALAR else None
                if plan is None:
                    raise TypeError(
                        f"the JSON fast path cannot read {contract.model.__name__}.{member.attribute} "
                        f"({annotation!r}): give its type a json_fast plan in codecs/_readers.py"
                    )
                field_type, reader = plan
                default: Any = msgspec.NODEFAULT
                optional = isinstance(annotation, types.UnionType) and type(None) in typing.get_args(
                    annotation
                )
                if optional:
                    default = msgspec.Raw(b"null") if field_type is msgspec.Raw else None
                fields.append((member.wire, field_type, default))
                steps[member.wire] = _Step(member.attribute, reader, optional)
        # Required fields first, as a struct wants; a member with a model default stays optional.
        ordered = sorted(fields, key=lambda f: f[2] is not msgspec.NODEFAULT)
        self.struct: Any = msgspec.defstruct(
            f"_{contract.model.__name__}Wire",
            [
                (name, kind) if default is msgspec.NODEFAULT else (name, kind, default)
                for name, kind, default in ordered
            ],
        )
        self.build: Callable[[Any], Any] = _generate_builder(
            contract.model, [steps[name] for name, _, _ in ordered]
        )

    def build_list(self, wires: list[Any] | None) -> tuple[Any, ...]:
        return () if wires is None else tuple(map(self.build, wires))


def _generate_builder(model: type, plan: list[_Step]) -> Callable[[Any], Any]:
    """A function that makes ``model`` from its struct, in the struct's field order. A reader is
    called only when the value is not None (None stays None for every optional member)."""
    source = BuilderSource(f"JSON builder of {model.__name__}", model, "wire")
    source.bind("_astuple", _astuple)
    source.unpack([step.attribute for step in plan], "_astuple(wire)")
    for step in plan:
        attribute, reader = step.attribute, step.reader
        setter = source.setter(attribute)
        if reader is None:
            source.line(f"{setter}(made, {attribute})")
        elif isinstance(reader, _ReadsNone):  # it reads None itself: a null list is an empty one
            read = source.reader(attribute, reader.read)
            source.line(f"{setter}(made, {read}({attribute}))")
        elif step.optional:
            read = source.reader(attribute, reader)
            source.line(f"{setter}(made, None if {attribute} is None else {read}({attribute}))")
        else:
            read = source.reader(attribute, reader)
            source.line(f"{setter}(made, {read}({attribute}))")
    return compile_builder(source)


def _compile() -> dict[type, tuple[msgspec.json.Decoder[Any], _FastModel]]:
    """A decoder and builder for every served contract; a member it cannot read raises."""
    served: dict[type, _FastModel] = {}
    for contract in served_contracts():
        served[contract.model] = _FastModel(contract, served)
    return {model: (msgspec.json.Decoder(entry.struct), entry) for model, entry in served.items()}


_decoders: dict[type, tuple[msgspec.json.Decoder[Any], _FastModel]] | None = None


def fast_models() -> dict[type, tuple[msgspec.json.Decoder[Any], _FastModel]]:
    """The models the fast path serves, with their decoders (built on first use)."""
    global _decoders  # built on first use, like the converters: an import pays nothing
    if _decoders is None:
        _decoders = _compile()
    return _decoders


_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))


def _holds_a_long_run_of_digits(data: bytes, limit: int) -> bool:
    """False when ``data`` surely holds no run of more than ``limit`` digits (an integer the general
    path's parser refuses, when ``limit`` is ``sys.get_int_max_str_digits()``); True when it holds a
    run of more than half as many.

    Any run of ``limit + 1`` digits covers two samples taken ``step`` bytes apart (``2 * step <=
    limit + 1``), so only between two samples that are both digits can one be: the usual body has a
    few such pairs, each refuted at its first non-digit.
    """
    step = (limit + 1) // 2
    marks = data[::step].translate(_DIGITS_AS_ONES)
    pair = marks.find(b"11")
    while pair >= 0:
        start = pair * step
        if data[start : start + step + 1].isdigit():
            return True
        pair = marks.find(b"11", pair + 1)
    return False


_int_max_str_digits = sys.get_int_max_str_digits  # read at each decode: a program may change it


def _fast_decode(data: bytes, into: type) -> Any:
    """``into`` decoded from ``data`` (UTF-8, no BOM), or :class:`FastPathDeclined`."""
    entry = fast_models().get(into)
    if entry is None:
        raise declined("json", "not a model the fast path serves", into)
    if not data.isascii():  # ASCII is valid UTF-8; anything else is checked whole, as the general path does
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            raise declined("json", "the body is not valid UTF-8", into) from None
    limit = _int_max_str_digits()  # 0: no limit
    if limit and len(data) > limit and _holds_a_long_run_of_digits(data, limit):
        raise declined("json", "a run of digits near Python's int-from-text limit", into)
    decoder, fast = entry
    try:
        return fast.build(decoder.decode(data))
    except msgspec.ValidationError as exc:
        raise declined("json", "a member msgspec does not type as the contract does", into) from exc
    except msgspec.DecodeError as exc:
        raise declined("json", "msgspec refused the document", into) from exc
    except InvalidValue as exc:
        raise declined("json", "a strict reader refused a value", into) from exc
    except Exception as exc:  # the unforeseen: a fast path never words an error of its own
        raise declined("json", f"unexpected {type(exc).__name__}", into, unexpected=True) from exc


#: ``into`` decoded from a UTF-8 body with no BOM, or :class:`FastPathDeclined`.
fast_decode: FastDecode = _fast_decode if FAST_PATHS_ON else switched_off("json")
