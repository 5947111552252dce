"""A fast path for JSON decoding: msgspec parses into structs generated from the contracts, and a
builder makes the models with the project's own strict readers.

It is a shortcut, never a second opinion (docs/design.md, "Fast paths"):

- it only ever says "here is the value" or "not me": whenever anything is unusual (a type msgspec
  does not expect, a decimal that is not plain digits, a datetime the strict reader refuses, a
  string msgspec cannot decode, a BOM or another charset), it refuses, and the general path
  (:mod:`._structure`) decides, with its own wording, field path and count of problems;
- where it gives a value, that value equals the general path's (``==`` and ``repr``):
  ``tests/test_json_fast.py`` holds the two paths to it, with hypothesis;
- money is read from the number's own text (msgspec's ``Raw``), never through ``float``.

A model is built without calling its ``__init__`` (each slot set directly), which the models allow
because they have no validators, converters or post-init hooks: ``tests/test_json_fast.py`` checks
that too.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
import msgspec

from ..models import BookingStatus, CallMethod
from ._contracts import CONTRACTS, Contract, Kind
from ._fast import MODELS_MODULE, BuilderSource, FastPathDeclined, compile_builder
from ._scalars import net_decimal, read_optional_datetime

__all__ = ["fast_decode", "fast_models"]

_STATUS = {status.value: status for status in BookingStatus}
_METHOD = {method.value: method for method in CallMethod}
_astuple = msgspec.structs.astuple

Reader = Callable[[Any], Any]


_NUMBER_START = frozenset("-0123456789")


def _decimal(raw: msgspec.Raw) -> Decimal:
    return _plain_decimal(str(raw, "ascii"))


def _optional_decimal(raw: msgspec.Raw) -> Decimal | None:
    text = str(raw, "ascii")
    return None if text == "null" else _plain_decimal(text)


def _plain_decimal(text: str) -> Decimal:
    # Raw holds one valid JSON value: one that starts like a number is a number, and it is in
    # plain notation unless it has an exponent. Anything else is the general path's to word.
    if text[0] not in _NUMBER_START or "e" in text or "E" in text:
        raise FastPathDeclined
    return net_decimal(text)


def _status(value: str) -> BookingStatus | str:
    return _STATUS.get(value, value)


def _method(value: int) -> CallMethod | int:
    return _METHOD.get(value, value)


def _is(annotation: Any, *options: Any) -> bool:
    return any(annotation == option for option in options)


def _plan(member_type: Any) -> tuple[Any, Reader | None]:
    """The struct field's type for a member's type, and how to read what msgspec gives (None: as is)."""
    if member_type in (int, str, int | None, str | None, bool):
        return member_type, None
    if _is(member_type, Decimal):
        return msgspec.Raw, _decimal
    if _is(member_type, Decimal | None):
        return msgspec.Raw, _optional_decimal
    if _is(member_type, datetime | None, datetime):
        return str | None, read_optional_datetime
    if _is(member_type, BookingStatus | str):
        return str, _status
    if _is(member_type, CallMethod | int):
        return int, _method
    raise TypeError(f"no fast plan for {member_type!r}")


@attrs.frozen
class _ReadsNone:
    """A reader that is given None too (a nested object's, a list's), not skipped for it."""

    read: Reader


class _Fast:
    """One contract's struct and builder."""

    def __init__(self, contract: Contract, fast: dict[type, _Fast]) -> None:
        self.model = contract.model
        fields: list[tuple[str, Any, Any]] = []
        steps: list[tuple[str, str, Reader | _ReadsNone | None]] = []
        resolved = typing.get_type_hints(contract.model)
        for member in contract.members:
            annotation = resolved[member.attribute]
            if member.kind is Kind.OBJECT:
                assert member.model is not None
                nested = fast[member.model]
                fields.append((member.wire, nested.struct | None, None))
                steps.append((member.attribute, member.wire, nested.build))
                continue
            if member.kind is Kind.LIST:
                assert member.model is not None
                item = fast[member.model]
                fields.append((member.wire, list[item.struct] | None, None))  # type: ignore[name-defined]
                steps.append((member.attribute, member.wire, _ReadsNone(item.build_list)))
                continue
            if member.kind is not Kind.SCALAR:
                raise TypeError(f"no fast plan for {member.wire}")
            field_type, reader = _plan(annotation)
            optional = isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)
            default: Any = msgspec.NODEFAULT
            if optional or (field_type is msgspec.Raw and reader is _optional_decimal):
                default = msgspec.Raw(b"null") if field_type is msgspec.Raw else None
            fields.append((member.wire, field_type, default))
            steps.append((member.attribute, member.wire, reader))
        # Required fields first, as a struct wants; a member with a model default stays optional.
        ordered = sorted(fields, key=lambda f: f[2] is not msgspec.NODEFAULT)
        self.struct: Any = msgspec.defstruct(
            f"_{contract.model.__name__}Wire",
            [
                (name, kind) if default is msgspec.NODEFAULT else (name, kind, default)
                for name, kind, default in ordered
            ],
        )
        by_wire = {wire: (attribute, reader) for attribute, wire, reader in steps}
        self.build: Callable[[Any], Any] = _generate_builder(
            contract.model, [by_wire[name] for name, _, _ in ordered]
        )

    def build_list(self, wires: list[Any] | None) -> tuple[Any, ...]:
        return () if wires is None else tuple(map(self.build, wires))


def _generate_builder(
    model: type, plan: list[tuple[str, Reader | _ReadsNone | None]]
) -> Callable[[Any], Any]:
    """A function that makes ``model`` from its struct, in the struct's field order. A reader is
    called only when the value is not None (None stays None for every optional member)."""
    source = BuilderSource(model, "wire")
    source.bind("_astuple", _astuple)
    source.line("values = _astuple(wire)")
    for index, (attribute, reader) in enumerate(plan):
        setter = source.setter(attribute, index)
        if reader is None:
            source.line(f"{setter}(made, values[{index}])")
        elif isinstance(reader, _ReadsNone):  # it reads None itself: a null list is an empty one
            read = source.bind(f"read{index}", reader.read)
            source.line(f"{setter}(made, {read}(values[{index}]))")
        else:
            read = source.bind(f"read{index}", reader)
            source.line(f"value = values[{index}]")
            source.line(f"{setter}(made, None if value is None else {read}(value))")
    return compile_builder(source)


def _compile() -> dict[type, tuple[msgspec.json.Decoder[Any], _Fast]]:
    fast: dict[type, _Fast] = {}
    # Nested contracts first: a booking needs its candidate's struct, a page its bookings'.
    for contract in sorted(
        CONTRACTS.values(), key=lambda c: sum(m.kind is not Kind.SCALAR for m in c.members)
    ):
        # Answers only: requests are decoded by the sandbox alone, and HttpError is a dictionary.
        if contract.http_error or contract.model.__module__ != MODELS_MODULE:
            continue
        try:
            fast[contract.model] = _Fast(contract, fast)
        except (TypeError, KeyError):
            continue  # a contract the fast path does not cover: the general path serves it
    return {model: (msgspec.json.Decoder(entry.struct), entry) for model, entry in fast.items()}


_decoders: dict[type, tuple[msgspec.json.Decoder[Any], _Fast]] | None = None


def fast_models() -> dict[type, tuple[msgspec.json.Decoder[Any], _Fast]]:
    """The models the fast path serves, with their decoders (built on first use)."""
    global _decoders  # built on first use, like the converters: an import pays nothing
    if _decoders is None:
        _decoders = _compile()
    return _decoders


def fast_decode(data: bytes, into: type) -> Any:
    """``into`` decoded from ``data`` (UTF-8, no BOM), or :class:`FastPathDeclined`."""
    entry = fast_models().get(into)
    if entry is None:
        raise FastPathDeclined
    decoder, fast = entry
    try:
        return fast.build(decoder.decode(data))
    except Exception as exc:  # anything at all (msgspec's refusal, a strict reader's, the unforeseen):
        # a fast path never words an error of its own; the general path decides.
        raise FastPathDeclined from exc
