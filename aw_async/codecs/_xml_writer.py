"""Writes what DataContractSerializer writes, so the sandbox and the tests speak the server's XML.

- The root is named after the contract, in its namespace, with ``xmlns:i`` declared on it.
- Members are written base-class first, then in ordinal order of their names; None is
  ``<Name i:nil="true" />``.
- A nested object whose contract lives in another namespace declares it with a generated prefix
  (``d4p1`` under the root, as in the RescheduleMadeBooking sample); members from a third namespace
  (a base class's) redeclare the default namespace on their own element.
- Text escapes ``&``, ``<`` and ``>``; a carriage return becomes ``&#xD;`` so that XML's line-end
  normalisation cannot turn it into a line feed; quotes and line feeds stay raw. Characters XML 1.0
  cannot carry at all are refused.
- ``<Error>`` bodies follow ``HttpError``, with a writer of their own: no namespace, only the keys
  present, ModelState as one element per key with its messages joined by spaces.
- A list member is one element holding one child per item, named after the item's contract in the
  item's namespace (under a generated prefix when that differs); an empty list is ``<Bookings />``.
  A bare list is the document ``<ArrayOfMadeBooking>`` in the item's namespace (docs/wire.md,
  "Collections").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal

from ..models import ErrorBody
from ._contracts import SERIALIZATION_NS, XSI_NS, Contract, Kind, contract_for
from ._scalars import InvalidValue, scalar_text

__all__ = ["PRIMITIVE_ROOTS", "write_document"]

#: The root element names a primitive may arrive under (docs/wire.md, "Primitive roots"). A decimal
#: balance may come as ``<int>`` when the server's value is integral (docs/api.md, GetCurrentCreditBalance).
PRIMITIVE_ROOTS: dict[type, tuple[str, ...]] = {
    Decimal: ("decimal", "int", "long"),
    int: ("int", "long"),
    str: ("string",),
    bool: ("boolean",),
}

_NOT_IN_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NEEDS_ESCAPE = re.compile("[&<>\r]")
_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"}
_XML_NAME = re.compile(r"[A-Za-z_][\w.\-]*")


def _escape(text: str) -> str:
    bad = _NOT_IN_XML.search(text)
    if bad is not None:
        raise InvalidValue(f"U+{ord(bad.group()):04X} cannot be carried by XML 1.0")
    return _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text)


def _text(value: object) -> str:
    text = scalar_text(value)
    return _escape(text) if isinstance(value, str) else text


def write_document(value: object) -> str:
    """The whole document for a model or a primitive, without an XML declaration."""
    for kind, names in PRIMITIVE_ROOTS.items():
        if type(value) is kind or (kind is int and isinstance(value, int) and not isinstance(value, bool)):
            name = names[0]
            if kind is int and not -(2**31) <= value < 2**31:  # type: ignore[operator]
                name = "long"
            return f'<{name} xmlns="{SERIALIZATION_NS}">{_text(value)}</{name}>'
    if isinstance(value, list | tuple):
        return _write_bare_list(value)
    contract = contract_for(type(value))
    parts: list[str] = []
    if type(value) is ErrorBody:
        _write_error(parts, value, contract, contract.name)
        return "".join(parts)
    parts.append(f'<{contract.name} xmlns:i="{XSI_NS}" xmlns="{contract.namespace}">')
    _write_members(parts, value, contract, contract.namespace, {}, depth=1)
    parts.append(f"</{contract.name}>")
    return "".join(parts)


def _write_error(parts: list[str], error: ErrorBody, contract: Contract, name: str) -> None:
    """ASP.NET's ``HttpError``, a dictionary rather than a data contract (docs/api.md, "Error
    bodies"): in no namespace, only the keys it has, in its own order; ``InnerException`` another
    one; ``ModelState`` one element per key, its messages joined by spaces."""
    parts.append(f"<{name}>")
    for member in contract.members:
        value = getattr(error, member.attribute)
        wire = member.wire
        if value is None or value == {}:
            continue
        if member.kind is Kind.OBJECT:
            _write_error(parts, value, contract, wire)
        elif member.kind is Kind.MAP:
            parts.append(f"<{wire}>")
            for key, messages in value.items():
                if _XML_NAME.fullmatch(key) is None:
                    raise InvalidValue(f"ModelState key {key!r} is not an XML element name")
                parts.append(f"<{key}>{_escape(' '.join(messages))}</{key}>")
            parts.append(f"</{wire}>")
        else:
            parts.append(f"<{wire}>{_text(value)}</{wire}>")
    parts.append(f"</{name}>")


def _declare(
    namespace: str, default_ns: str, prefixes: dict[str, str], depth: int
) -> tuple[str, dict[str, str]]:
    """The ``xmlns:dNp1`` declaration a nested contract in ``namespace`` needs (none when it is the
    default or already has a prefix), and the prefixes in scope below it."""
    if namespace == default_ns or namespace in prefixes:
        return "", prefixes
    prefix = f"d{depth + 3}p1"
    return f' xmlns:{prefix}="{namespace}"', {**prefixes, namespace: prefix}


def _write_bare_list(items: Sequence[object]) -> str:
    if not items:
        raise TypeError("an empty bare list names no item contract: write it inside its envelope")
    item = contract_for(type(items[0]))
    name = f"ArrayOf{item.name}"
    parts = [f'<{name} xmlns:i="{XSI_NS}" xmlns="{item.namespace}">']
    for value in items:
        if contract_for(type(value)) is not item:
            raise TypeError(f"a bare list holds one contract; {type(value).__name__} is not {item.name}")
        parts.append(f"<{item.name}>")
        _write_members(parts, value, item, item.namespace, {}, depth=2)
        parts.append(f"</{item.name}>")
    parts.append(f"</{name}>")
    return "".join(parts)


def _write_members(
    parts: list[str],
    obj: object,
    contract: Contract,
    default_ns: str,
    prefixes: dict[str, str],
    depth: int,
) -> None:
    for member in contract.xml_order:
        value = getattr(obj, member.attribute)
        if member.namespace == default_ns:
            name, declare, child_default = member.wire, "", default_ns
        elif member.namespace in prefixes:
            name, declare, child_default = f"{prefixes[member.namespace]}:{member.wire}", "", default_ns
        else:
            name, declare, child_default = member.wire, f' xmlns="{member.namespace}"', member.namespace
        if value is None:
            parts.append(f'<{name}{declare} i:nil="true" />')
        elif member.kind is Kind.OBJECT:
            nested = contract_for(type(value))
            declared, child_prefixes = _declare(nested.namespace, child_default, prefixes, depth)
            parts.append(f"<{name}{declare}{declared}>")
            _write_members(parts, value, nested, child_default, child_prefixes, depth + 1)
            parts.append(f"</{name}>")
        elif member.kind is Kind.LIST:
            if not value:
                parts.append(f"<{name}{declare} />")
                continue
            item = contract_for(type(value[0]))
            declared, child_prefixes = _declare(item.namespace, child_default, prefixes, depth)
            item_name = item.name
            if item.namespace != child_default:
                item_name = f"{child_prefixes[item.namespace]}:{item.name}"
            parts.append(f"<{name}{declare}{declared}>")
            for entry in value:
                parts.append(f"<{item_name}>")
                entry_contract = contract_for(type(entry))
                _write_members(parts, entry, entry_contract, child_default, child_prefixes, depth + 2)
                parts.append(f"</{item_name}>")
            parts.append(f"</{name}>")
        else:
            parts.append(f"<{name}{declare}>{_text(value)}</{name}>")
