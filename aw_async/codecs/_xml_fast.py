"""A fast path for XML decoding: the exact layout DataContractSerializer writes, matched by regular
expressions built from the contracts, after the hardened parser has approved the body.

It is a shortcut, never a second opinion (docs/design.md, "Fast paths"), like :mod:`._json_fast`:

- **Security first.** Every body it reads has been accepted by a hardened lxml parser (the same
  options as the general path's, from :mod:`._xml_parser`) before anything is matched. That parser
  builds no tree: its target has no callbacks, so libxml2 only checks the document, which costs
  about 60% of building one.
- **Only the usual layout.** A document is read here only when it is exactly what the server writes
  (docs/wire.md, "XML"): the root with ``xmlns:i`` and its default namespace; every member present,
  in DataContractSerializer's order, with nothing else between them but whitespace; a nested object
  of another namespace under a generated ``dNpM`` prefix declared on its own element; a base class's
  members from a third namespace with their own ``xmlns``; ``i:nil="true"`` for null. Since the
  expressions spell out every namespace declaration, an element matched here is in the namespace
  the general path would find it in. Anything else (comments, CDATA, an unknown or missing member,
  another order, a prefix spelled otherwise, ``i:nil="1"``) is declined, and the general path
  decides, with its own wording, field path and count of problems.
- **The general path's values.** Text is read with the same strict readers (each member type's row
  in :mod:`._readers`), after the same line-end normalisation and references the parser applies.
  ``tests/codecs/test_xml_fast.py`` holds the two paths to the same ``==`` and ``repr``, with hypothesis.
- **Names, not numbers.** Every group an expression captures is named after its member
  (``credits``, ``credits_nil``, ``candidate__user_id``), and a builder unpacks ``Match.groups()``
  into locals of those names: no group index is counted by hand.

Lists are read one item at a time with an expression of the item's (a page's hundred bookings in one
expression would be a lazy scan of the whole body); the fast path serves a contract whose lists are
members of the root, which every answer model's are.
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable
from typing import Any

import attrs
from lxml import etree

from ._contracts import CONTRACTS, XSI_NS, Contract, Kind
from ._fast import (
    FAST_PATHS_ON,
    BuilderSource,
    FastDecode,
    FastPathDeclined,
    compile_builder,
    declined,
    served_contracts,
    switched_off,
    wrapped,
)
from ._readers import READERS
from ._scalars import InvalidValue
from ._xml_parser import validating_parser

__all__ = ["fast_decode", "fast_xml_models"]

_WS = r"[ \t\r\n]*"  # XML's whitespace, which DataContractSerializer writes only when indenting
_PREFIX = "d[0-9]+p[0-9]+"  # the prefixes DataContractSerializer generates: d<depth>p<count>
_NIL = ' i:nil="true" ?/>'

Reader = Callable[[str], Any]


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


class _Pattern:
    """One expression being written. Every group it captures is named (``credits``, ``credits_nil``,
    ``candidate__user_id``), and :attr:`names` lists them in the order ``Match.groups()`` gives them."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.names: list[str] = []

    def add(self, text: str) -> None:
        self.parts.append(text)

    def capture(self, name: str, body: str) -> str:
        """A group named ``name`` around ``body``; returns the name."""
        self.parts.append(f"(?P<{name}>{body})")
        self.names.append(name)
        return name

    def declare_prefix(self, name: str, namespace: str, taken: list[str]) -> str:
        """``xmlns:dNpM="namespace"`` with any generated prefix but those in scope (which it would
        shadow), captured as ``name``; returns the expression that spells the prefix from then on."""
        guards = "".join(f"(?!{prefix}=)" for prefix in taken)
        self.add(f" xmlns:{guards}")
        self.capture(name, _PREFIX)
        self.add(f'="{re.escape(namespace)}"')
        return f"(?P={name})"

    def compile(self) -> re.Pattern[str]:
        compiled = re.compile("".join(self.parts))
        # Every group is named, so the builder's names are Match.groups()'s order, not counted by hand.
        assert sorted(compiled.groupindex, key=compiled.groupindex.__getitem__) == self.names
        assert compiled.groups == len(self.names)
        return compiled


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

    def inside(self, pattern: _Pattern, namespace: str, prefix_group: str) -> tuple[_Scope, str | None]:
        """The scope inside an element whose content is in ``namespace``: the same one, or one with a
        prefix declared for it on the element (written into ``pattern`` as the group
        ``prefix_group``, whose name comes second)."""
        if namespace == self.default or any(known == namespace for known, _ in self.prefixes):
            return self, None
        spelling = pattern.declare_prefix(prefix_group, namespace, [s for _, s in self.prefixes])
        return _Scope(self.default, (*self.prefixes, (namespace, spelling))), prefix_group


@attrs.frozen
class _ListSlot:
    """A list member of the root: its items are read one by one, with the item's own expression.
    The groups it reads are the list element's: ``i:nil``, the empty element, and the items' prefix
    where the element declares it."""

    item: Contract
    close: str
    default: str
    nil: str
    empty: str
    declared: str | None

    def read(self, document: str, position: int, found: re.Match[str], escaped: bool) -> tuple[Any, int]:
        """The items, and where the list's element ends."""
        if found[self.nil] is not None or found[self.empty] is not None:
            return (), position
        prefix = None if self.declared is None else found[self.declared]
        expression, build = _item_program(self.item, self.default, prefix)
        items = []
        position = _after_whitespace(document, position)
        close = self.close
        while not document.startswith(close, position):
            item = expression.match(document, position)
            if item is None:
                raise FastPathDeclined("a list item not in the server's usual layout")
            values = item.groups()
            items.append(build(_unescaped(values) if escaped else values, ()))
            position = item.end()
        return tuple(items), position + len(close)


class _Program:
    """How to match and build one contract at one place in a document: the root (``element`` None)
    or a list's item (``element`` its element's name)."""

    def __init__(self, contract: Contract, scope: _Scope, element: str | None = None) -> None:
        self.segments: list[tuple[re.Pattern[str], _ListSlot | None]] = []
        pattern = _Pattern()
        if element is None:
            title = f"XML builder of {contract.model.__name__}"
            pattern.add(rf"(?:<\?xml [^>]*\?>)?{_WS}<{re.escape(contract.name)}")
            pattern.add(f' xmlns:i="{re.escape(XSI_NS)}" xmlns="{re.escape(contract.namespace)}">')
        else:
            title = f"XML builder of {contract.model.__name__} in a list"
            pattern.add(f"<{element}>")
        source = BuilderSource(title, contract.model, "groups, lists")
        names: list[str] = []
        lists: list[str] = []
        pattern = self._members(pattern, source, contract, scope, "", names, lists)
        if element is None:
            pattern.add(f"{_WS}</{re.escape(contract.name)}>{_WS}\\Z")
        else:
            pattern.add(f"{_WS}</{element}>{_WS}")
        self.segments.append((pattern.compile(), None))
        names.extend(pattern.names)
        if lists:
            source.unpack(lists, "lists", first=True)
        source.unpack(names, "groups", first=True)
        self.build = compile_builder(source)

    def _members(
        self,
        pattern: _Pattern,
        source: BuilderSource,
        contract: Contract,
        scope: _Scope,
        prefix: str,
        names: list[str],
        lists: list[str] | None,
    ) -> _Pattern:
        """Write ``contract``'s members into ``pattern`` and the lines that set them into ``source``.
        Groups are named ``prefix`` + the member's attribute; ``lists`` collects the root's list
        members (None below the root, where the fast path reads no list), and ``names`` the groups
        of the expressions that a list ends."""
        hints = typing.get_type_hints(contract.model)
        for member in contract.xml_order:
            attribute = member.attribute
            annotation = hints[attribute]
            group = prefix + attribute
            name, declare, inner = scope.name_of(member.namespace, member.wire)
            setter = source.setter(attribute)
            pattern.add(f"{_WS}<{name}{declare}(?:")
            if member.kind is Kind.SCALAR:
                readers = READERS[annotation]  # KeyError: a type with no row in the reader table
                pattern.add(">")
                pattern.capture(group, "[^<]*")
                pattern.add(f"</{name}>|")
                pattern.capture(f"{group}_nil", ' i:nil="true"')
                pattern.add("? ?/>)")
                reader = None if readers.text_is_the_value else readers.text
                _read_text(source, setter, member.wire, attribute, reader, required=not _optional(annotation))
            elif member.kind is Kind.OBJECT:
                assert member.model is not None
                nested = CONTRACTS[member.model]
                pattern.capture(f"{group}_nil", _NIL)
                pattern.add("|")
                child_scope, _ = inner.inside(pattern, nested.namespace, f"{group}_prefix")
                pattern.add(">")
                nested_source = BuilderSource(f"{source.title}, its {attribute}", nested.model, "")
                first = len(pattern.names)
                pattern = self._members(
                    pattern, nested_source, nested, child_scope, f"{group}__", names, None
                )
                pattern.add(f"{_WS}</{name}>)")
                # The nested builder's parameters are its groups, named as it names them; the
                # arguments are the same groups, named as this builder names them.
                nested_groups = pattern.names[first:]
                nested_source.parameters = ", ".join(g.removeprefix(f"{group}__") for g in nested_groups)
                arguments = [g.removeprefix(prefix) for g in nested_groups]
                build = source.bind(f"build_{attribute}", compile_builder(nested_source))
                if not _optional(annotation):
                    source.line(f"if {attribute}_nil is not None:")
                    source.line('    raise _Declined("a member that cannot be None is nil")')
                source.line(f"if {attribute}_nil is not None:")
                source.line(f"    {setter}(made, None)")
                source.line("else:")
                source.lines.extend(wrapped(f"        {setter}(made, {build}(", arguments, "))"))
            elif member.kind is Kind.LIST and lists is not None:
                assert member.model is not None
                item = CONTRACTS[member.model]
                nil = pattern.capture(f"{group}_nil", _NIL)
                pattern.add("|")
                empty = pattern.capture(f"{group}_empty", " ?/>")
                pattern.add("|")
                item_scope, declared = inner.inside(pattern, item.namespace, f"{group}_prefix")
                pattern.add(">)")
                slot = _ListSlot(item, f"</{name}>", item_scope.default, nil, empty, declared)
                # The items' expression needs their prefix, which only a document spells: it is
                # compiled per spelling. One is compiled now, so that items the fast path cannot
                # read fail when the contract is built.
                _item_program(item, item_scope.default, None if declared is None else "d1p1")
                self.segments.append((pattern.compile(), slot))
                names.extend(pattern.names)
                lists.append(attribute)
                source.line(f"{setter}(made, {attribute})")
                pattern = _Pattern()
            else:
                raise TypeError(
                    f"the XML fast path cannot read {contract.model.__name__}.{attribute}: a map, or a "
                    "list below the root"
                )
        return pattern


def _read_text(
    source: BuilderSource, setter: str, wire: str, attribute: str, reader: Reader | None, *, required: bool
) -> None:
    """The lines that set a member held as text: ``<Name>text</Name>``, ``<Name />`` (the empty
    string) or ``<Name i:nil="true" />`` (None; declined for a member that cannot be None)."""
    source.line(f"if {attribute} is None and {attribute}_nil is None:  # <{wire} />")
    source.line(f'    {attribute} = ""')
    if required:
        source.line(f"if {attribute} is None:")
        source.line('    raise _Declined("a member that cannot be None is nil")')
    if reader is None:
        source.line(f"{setter}(made, {attribute})")
        return
    read = source.reader(attribute, reader)
    if required:
        source.line(f"{setter}(made, {read}({attribute}))")
    else:
        source.line(f"{setter}(made, None if {attribute} is None else {read}({attribute}))")


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


def _compile() -> dict[type, _Program]:
    """A program for every served contract; a member it cannot read raises."""
    return {contract.model: _Program(contract, _Scope(contract.namespace)) for contract in served_contracts()}


_programs: dict[type, _Program] | None = None


def fast_xml_models() -> dict[type, _Program]:
    """The models the fast path serves (built on first use, like the converters)."""
    global _programs
    if _programs is None:
        _programs = _compile()
    return _programs


def _fast_decode(body: bytes, into: type) -> Any:
    """``into`` read from ``body`` (UTF-8, with no DOCTYPE or entity declaration), or
    :class:`FastPathDeclined`."""
    program = fast_xml_models().get(into)
    if program is None:
        raise declined("xml", "not a model the fast path serves", into)
    parser = validating_parser()
    try:
        etree.fromstring(body, parser)
    except etree.XMLSyntaxError:  # the general path parses again, and words the error
        raise declined("xml", "the hardened parser refused the body", into) from None
    # A namespace error (an undeclared prefix) libxml2 logs, yet parses on; a warning (a relative
    # namespace URI) is no error. The log is empty for nearly every body: filtered only when not.
    if parser.error_log and parser.error_log.filter_from_errors():
        raise declined("xml", "the hardened parser logged an error", into)
    try:
        document = body.decode("utf-8")
        escaped = "&" in document or "\r" in document
        position, lists = 0, []
        groups: tuple[Any, ...] = ()
        for expression, slot in program.segments:
            found = expression.match(document, position)
            if found is None:
                raise FastPathDeclined("not the server's usual layout")
            values = found.groups()
            groups += _unescaped(values) if escaped else values
            position = found.end()
            if slot is not None:
                items, position = slot.read(document, position, found, escaped)
                lists.append(items)
        return program.build(groups, lists)
    except FastPathDeclined as exc:
        raise declined("xml", exc.reason, into) from exc
    except InvalidValue as exc:
        raise declined("xml", "a strict reader refused a value", into) from exc
    except Exception as exc:  # the unforeseen: a fast path never words an error of its own
        raise declined("xml", f"unexpected {type(exc).__name__}", into, unexpected=True) from exc


#: ``into`` read from a UTF-8 body with no DOCTYPE or entity declaration, or :class:`FastPathDeclined`.
fast_decode: FastDecode = _fast_decode if FAST_PATHS_ON else switched_off("xml")
