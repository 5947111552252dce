"""A fast path for XML decoding: the exact layout DataContractSerializer writes, matched by regular
expressions built from the contracts, after the hardened parser has approved the body.

It is a shortcut, never a second opinion (docs/design.md, "Fast paths"), like :mod:`._json_fast`:

- **Security first.** Every body it reads has been accepted by a hardened lxml parser (the same
  options as the general path's) before anything is matched. That parser builds no tree: its target
  has no callbacks, so libxml2 only checks the document, which costs about 60% of building one.
- **Only the usual layout.** A document is read here only when it is exactly what the server writes
  (docs/wire.md, "XML"): the root with ``xmlns:i`` and its default namespace; every member present,
  in DataContractSerializer's order, with nothing else between them but whitespace; a nested object
  of another namespace under a generated ``dNpM`` prefix declared on its own element; a base class's
  members from a third namespace with their own ``xmlns``; ``i:nil="true"`` for null. Since the
  expressions spell out every namespace declaration, an element matched here is in the namespace
  the general path would find it in. Anything else (comments, CDATA, an unknown or missing member,
  another order, a prefix spelled otherwise, ``i:nil="1"``) is declined, and the general path
  decides, with its own wording, field path and count of problems.
- **The general path's values.** Text is read with the same strict readers, after the same line-end
  normalisation and references the parser applies. ``tests/test_xml_fast.py`` holds the two paths to
  the same ``==`` and ``repr``, with hypothesis.

Lists are read one item at a time with an expression of the item's (a page's hundred bookings in one
expression would be a lazy scan of the whole body); the fast path serves a contract whose lists are
members of the root, which every answer model's are.
"""

from __future__ import annotations

import functools
import re
import threading
import typing
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from lxml import etree

from ..models import BookingStatus, CallMethod
from ._contracts import CONTRACTS, XSI_NS, Contract, Kind
from ._fast import MODELS_MODULE, BuilderSource, FastPathDeclined, compile_builder
from ._scalars import parse_datetime, parse_decimal_text, parse_int_text, read_optional_datetime

__all__ = ["HARDENED_PARSER", "fast_decode", "fast_xml_models"]

_WS = r"[ \t\r\n]*"  # XML's whitespace, which DataContractSerializer writes only when indenting
_PREFIX = "d[0-9]+p[0-9]+"  # the prefixes DataContractSerializer generates: d<depth>p<count>
_NIL = ' i:nil="true" ?/>'
_STATUS = {status.value: status for status in BookingStatus}
_METHOD = {method.value: method for method in CallMethod}

Reader = Callable[[str], Any]


def _bool(text: str) -> bool:
    if text == "true":
        return True
    if text == "false":
        return False
    raise FastPathDeclined  # `1` and `0` are xs:boolean too: the general path reads them


def _method(text: str) -> CallMethod | int:
    number = parse_int_text(text)
    return _METHOD.get(number, number)


def _status(text: str) -> BookingStatus | str:
    return _STATUS.get(text, text)


#: How the general path reads each member type from text (codecs/_xml.py's leaf readers, and the
#: shared hooks of codecs/_structure.py); None: the text as it is.
_READERS: dict[Any, Reader | None] = {
    str: None,
    str | None: None,
    int: parse_int_text,
    int | None: parse_int_text,
    Decimal: parse_decimal_text,
    Decimal | None: parse_decimal_text,
    bool: _bool,
    datetime: parse_datetime,
    datetime | None: read_optional_datetime,
    BookingStatus | str: _status,
    CallMethod | int: _method,
}


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


class _Pattern:
    """One expression being written, numbering its capture groups as they are written."""

    def __init__(self, offset: int = 0) -> None:
        self.parts: list[str] = []
        self.groups = 0
        self.offset = offset
        """How many groups the program's earlier expressions have: indices count from there."""

    def add(self, text: str) -> None:
        self.parts.append(text)

    def capture(self, body: str) -> int:
        """A capture group; returns its index among the program's groups."""
        self.parts.append(f"({body})")
        self.groups += 1
        return self.offset + self.groups - 1

    def declare_prefix(self, namespace: str, taken: list[str]) -> tuple[int, str]:
        """``xmlns:dNpM="namespace"`` with any generated prefix but those in scope (which it would
        shadow); returns the group's index and the expression that spells the prefix from then on."""
        self.groups += 1
        name = f"p{self.groups}"
        guards = "".join(f"(?!{prefix}=)" for prefix in taken)
        self.parts.append(f' xmlns:{guards}(?P<{name}>{_PREFIX})="{re.escape(namespace)}"')
        return self.offset + self.groups - 1, f"(?P={name})"

    def compile(self) -> re.Pattern[str]:
        return re.compile("".join(self.parts))


@attrs.frozen
class _Scope:
    """Where an element is written: the default namespace, and the prefixes in scope (namespace ->
    the expression that spells the prefix)."""

    default: str
    prefixes: tuple[tuple[str, str], ...] = ()

    def name_of(self, namespace: str, local: str) -> tuple[str, str, _Scope]:
        """An element's name, the ``xmlns`` it declares, and the scope of its children, as
        DataContractSerializer writes them (codecs/_xml_writer.py, ``_write_members``)."""
        local = re.escape(local)
        if namespace == self.default:
            return local, "", self
        for known, spelling in self.prefixes:
            if known == namespace:
                return f"{spelling}:{local}", "", self
        return local, f' xmlns="{re.escape(namespace)}"', _Scope(namespace, self.prefixes)

    def inside(self, pattern: _Pattern, namespace: str) -> tuple[_Scope, int | None]:
        """The scope inside an element whose content is in ``namespace``: the same one, or one with a
        prefix declared for it on the element (written into ``pattern``, whose group index comes
        second)."""
        if namespace == self.default or any(known == namespace for known, _ in self.prefixes):
            return self, None
        index, spelling = pattern.declare_prefix(namespace, [s for _, s in self.prefixes])
        return _Scope(self.default, (*self.prefixes, (namespace, spelling))), index


class _ListSlot:
    """A list member of the root: its items are read one by one, with the item's own expression."""

    def __init__(self, item: Contract, close: str, default: str, nil: int, empty: int, declared: int | None):
        self.item, self.close, self.default = item, close, default
        self.nil, self.empty, self.declared = nil, empty, declared
        """Group indices: ``i:nil``, the empty element, and the items' prefix where it is declared."""

    def read(self, document: str, position: int, groups: tuple[Any, ...], escaped: bool) -> tuple[Any, int]:
        """The items, and where the list's element ends."""
        if groups[self.nil] is not None or groups[self.empty] is not None:
            return (), position
        prefix = None if self.declared is None else groups[self.declared]
        expression, build = _item_program(self.item, self.default, prefix)
        items = []
        position = _after_whitespace(document, position)
        close = self.close
        while not document.startswith(close, position):
            found = expression.match(document, position)
            if found is None:
                raise FastPathDeclined
            values = found.groups()
            items.append(build(_unescaped(values) if escaped else values, None))
            position = found.end()
        return tuple(items), position + len(close)


class _Program:
    """How to match and build one contract at one place in a document: the root (``element`` None)
    or a list's item (``element`` its element's name)."""

    def __init__(self, contract: Contract, scope: _Scope, element: str | None = None) -> None:
        self.segments: list[tuple[re.Pattern[str], _ListSlot | None]] = []
        pattern = _Pattern()
        if element is None:
            pattern.add(rf"(?:<\?xml [^>]*\?>)?{_WS}<{re.escape(contract.name)}")
            pattern.add(f' xmlns:i="{re.escape(XSI_NS)}" xmlns="{re.escape(contract.namespace)}">')
        else:
            pattern.add(f"<{element}>")
        source = BuilderSource(contract.model, "g, lists")
        source.bind("_Declined", FastPathDeclined)
        pattern = self._members(pattern, source, contract, scope, lists_allowed=element is None)
        if element is None:
            pattern.add(f"{_WS}</{re.escape(contract.name)}>{_WS}\\Z")
        else:
            pattern.add(f"{_WS}</{element}>{_WS}")
        self.segments.append((pattern.compile(), None))
        self.build = compile_builder(source)

    def _members(
        self, pattern: _Pattern, source: BuilderSource, contract: Contract, scope: _Scope, lists_allowed: bool
    ) -> _Pattern:
        hints = typing.get_type_hints(contract.model)
        for member in contract.xml_order:
            annotation = hints[member.attribute]
            name, declare, inner = scope.name_of(member.namespace, member.wire)
            setter = source.setter(member.attribute, len(source.namespace))
            pattern.add(f"{_WS}<{name}{declare}(?:")
            if member.kind is Kind.SCALAR:
                reader = _READERS[annotation]  # KeyError: a type the fast path does not read
                pattern.add(">")
                text = pattern.capture("[^<]*")
                pattern.add(f"</{name}>|")
                nil = pattern.capture(' i:nil="true"')
                pattern.add("? ?/>)")
                _read_text(source, setter, reader, text, nil, required=not _optional(annotation))
            elif member.kind is Kind.OBJECT:
                assert member.model is not None
                nested = CONTRACTS[member.model]
                nil = pattern.capture(_NIL)
                pattern.add("|")
                child_scope, _ = inner.inside(pattern, nested.namespace)
                pattern.add(">")
                nested_source = BuilderSource(nested.model, "g, lists")
                nested_source.bind("_Declined", FastPathDeclined)
                pattern = self._members(pattern, nested_source, nested, child_scope, lists_allowed=False)
                pattern.add(f"{_WS}</{name}>)")
                build = source.bind(f"build{len(source.namespace)}", compile_builder(nested_source))
                if not _optional(annotation):
                    source.line(f"if g[{nil}] is not None: raise _Declined")
                source.line(f"{setter}(made, None if g[{nil}] is not None else {build}(g, lists))")
            elif member.kind is Kind.LIST and lists_allowed:
                assert member.model is not None
                item = CONTRACTS[member.model]
                nil = pattern.capture(_NIL)
                pattern.add("|")
                empty = pattern.capture(" ?/>")
                pattern.add("|")
                item_scope, declared = inner.inside(pattern, item.namespace)
                pattern.add(">)")
                slot = _ListSlot(item, f"</{name}>", item_scope.default, nil, empty, declared)
                # The items' expression needs their prefix, which only a document spells: it is
                # compiled per spelling. One is compiled now, so that items the fast path cannot
                # read leave this contract to the general path at once.
                _item_program(item, item_scope.default, None if declared is None else "d1p1")
                self.segments.append((pattern.compile(), slot))
                source.line(f"{setter}(made, lists[{len(self.segments) - 1}])")
                pattern = _Pattern(pattern.offset + pattern.groups)
            else:  # a map (HttpError's), or a list below the root
                raise TypeError(f"no fast plan for {member.wire}")
        return pattern


def _read_text(
    source: BuilderSource, setter: str, reader: Reader | None, text: int, nil: int, *, required: bool
) -> None:
    """The lines that set a member held as text: ``<Name>text</Name>``, ``<Name />`` (the empty
    string) or ``<Name i:nil="true" />`` (None; declined for a member that cannot be None)."""
    source.line(f"value = g[{text}]")
    source.line(f'if value is None and g[{nil}] is None: value = ""')
    if required:
        source.line("if value is None: raise _Declined")
    if reader is None:
        source.line(f"{setter}(made, value)")
        return
    read = source.bind(f"read{setter[3:]}", reader)
    if required:
        source.line(f"{setter}(made, {read}(value))")
    else:
        source.line(f"{setter}(made, None if value is None else {read}(value))")


@functools.lru_cache(maxsize=32)  # DataContractSerializer spells an item's prefix one way or two
def _item_program(item: Contract, default: str, prefix: str | None) -> tuple[re.Pattern[str], Any]:
    """The expression and builder of one list item, whose prefix (if any) is now known."""
    scope = _Scope(default, () if prefix is None else ((item.namespace, re.escape(prefix)),))
    element, declare, _ = scope.name_of(item.namespace, item.name)
    assert not declare
    program = _Program(item, scope, element)
    ((expression, _),) = program.segments
    return expression, program.build


_WHITESPACE = re.compile(_WS)


def _after_whitespace(document: str, position: int) -> int:
    found = _WHITESPACE.match(document, position)
    assert found is not None  # it matches nothing, at worst
    return found.end()


# The references a parser resolves in text: the five predefined entities, and character references
# (any other entity was refused by the parser, and every reference it let through is a valid one).
_REFERENCE = re.compile(r"&(?:#x([0-9A-Fa-f]+)|#([0-9]+)|(amp|lt|gt|quot|apos));")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _resolve(reference: re.Match[str]) -> str:
    hexadecimal, decimal, entity = reference.groups()
    if entity is not None:
        return _ENTITIES[entity]
    return chr(int(hexadecimal, 16) if hexadecimal is not None else int(decimal))


def _text(raw: str) -> str:
    """Text as the parser gives it: line ends normalised first (XML 1.0, 2.11), then references
    resolved, so that ``&#xD;`` stays a carriage return."""
    if "\r" in raw:
        raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return _REFERENCE.sub(_resolve, raw) if "&" in raw else raw


def _unescaped(groups: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if value is None else _text(value) for value in groups)


class _ValidateOnlyTarget:
    """A parser target with no callbacks: libxml2 checks the document and builds nothing."""

    def close(self) -> None:
        return None


#: The parser options that keep XML harmless, for both paths: the body is UTF-8 by now (this
#: overrides any declaration); no entity expansion, no DTD, no network, no recovery, and no huge
#: trees (libxml2 then refuses nesting deeper than 256 levels).
HARDENED_PARSER: dict[str, Any] = {
    "encoding": "utf-8",
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": False,
    "recover": False,
    "collect_ids": False,
}
_local = threading.local()


def _approver() -> etree.XMLParser:
    try:
        return _local.parser  # type: ignore[no-any-return]
    except AttributeError:
        _local.parser = etree.XMLParser(target=typing.cast(Any, _ValidateOnlyTarget()), **HARDENED_PARSER)
        return _local.parser  # type: ignore[no-any-return]


def _compile() -> dict[type, _Program]:
    programs: dict[type, _Program] = {}
    for contract in CONTRACTS.values():
        # Answers only: requests are never XML, and HttpError is a dictionary.
        if contract.http_error or contract.model.__module__ != MODELS_MODULE:
            continue
        try:
            programs[contract.model] = _Program(contract, _Scope(contract.namespace))
        except (TypeError, KeyError):
            continue  # a contract the fast path does not cover: the general path serves it
    return programs


_programs: dict[type, _Program] | None = None


def fast_xml_models() -> dict[type, _Program]:
    """The models the fast path serves (built on first use, like the converters)."""
    global _programs
    if _programs is None:
        _programs = _compile()
    return _programs


def fast_decode(body: bytes, into: type) -> Any:
    """``into`` read from ``body`` (UTF-8, with no DOCTYPE or entity declaration), or
    :class:`FastPathDeclined`."""
    program = fast_xml_models().get(into)
    if program is None:
        raise FastPathDeclined
    try:
        etree.fromstring(body, _approver())
        document = body.decode("utf-8")
    except (etree.XMLSyntaxError, UnicodeDecodeError) as exc:
        raise FastPathDeclined from exc  # the general path parses again, and words the error
    escaped = "&" in document or "\r" in document
    position, lists = 0, []
    groups: tuple[Any, ...] = ()
    try:
        for expression, slot in program.segments:
            found = expression.match(document, position)
            if found is None:
                raise FastPathDeclined
            values = found.groups()
            groups += _unescaped(values) if escaped else values
            position = found.end()
            if slot is not None:
                items, position = slot.read(document, position, groups, escaped)
                lists.append(items)
        return program.build(groups, lists)
    except FastPathDeclined:
        raise
    except Exception as exc:  # a strict reader's refusal, or the unforeseen: never an error of our own
        raise FastPathDeclined from exc
