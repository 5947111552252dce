"""The XML codec: .NET DataContractSerializer documents, and Web API's ``<Error>`` bodies.

Reading (docs/wire.md, "XML"):

- The encoding comes from a BOM, else the ``Content-Type`` charset, else the XML declaration, else
  UTF-8. Whatever it is, the body is handed to lxml as UTF-8, so one byte scan can refuse every
  DOCTYPE and entity declaration before any parsing happens (Web API never writes one).
- The parser is hardened as well (:mod:`._xml_parser`, whose settings both paths use): no DTD, no
  entity expansion, no network, no recovery, no huge trees (libxml2 then refuses nesting deeper
  than 256 levels).
- Comments and processing instructions between members are skipped; inside a value they make it
  mixed content, which is an error (Web API writes neither).
- Elements are matched by namespace URI and local name (lxml's ``{uri}local``), never by prefix;
  order carries no meaning; unknown elements are ignored; ``i:nil`` and an absent element are None,
  an empty element without ``i:nil`` is the empty string (an ``<Error>``'s empty element is null).

A model's answer in the server's usual layout is first offered to the fast path (:mod:`._xml_fast`),
which gives this module's value or declines; everything else, and every refusal, is read here.
Writing is in :mod:`._xml_writer`.
"""

from __future__ import annotations

import functools
import re
from typing import Any, TypeVar

import attrs
from lxml import etree

from ..errors import DecodeError, EncodeError
from ..models import ErrorBody
from ._base import (
    DEFAULT_MAX_BODY_BYTES,
    check_size,
    decode_text,
    is_plain_utf8,
    normalize_charset,
    split_bom,
)
from ._contracts import CONTRACTS, SERIALIZATION_NS, XSI_NS, Contract, Kind, Member, contract_for
from ._fast import FastPathDeclined
from ._scalars import InvalidValue
from ._structure import TEXT_STRUCTURER
from ._xml_fast import fast_decode
from ._xml_parser import tree_parser
from ._xml_writer import PRIMITIVE_ROOTS, write_document

__all__ = ["XmlCodec"]

T = TypeVar("T")

_XSI_NIL = f"{{{XSI_NS}}}nil"
_NIL_TRUE = frozenset(("true", "1"))  # xs:boolean's two spellings of true

_DECLARED_ENCODING = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._-]*)[\"']")
# One search: it is twice as fast as two `in` tests, since '<' is everywhere in XML.
_FORBIDDEN = re.compile(rb"<!(DOCTYPE|ENTITY)")
_SNIFFED = (b"<?xml", b"<\x00")  # a declaration to read, or UTF-16LE without a BOM


def _utf8_body(data: bytes, charset: str | None) -> bytes:
    if is_plain_utf8(data, charset) and (charset is not None or not data.startswith(_SNIFFED)):
        return data  # the server's usual answer: UTF-8, no BOM, no declaration
    encoding, body = split_bom(data)
    if encoding is None and charset:
        encoding = normalize_charset(charset)
    if encoding is None:
        # XML 1.0 Appendix F: UTF-16 without a BOM starts with '<' and a zero byte.
        if body[:2] == b"<\x00":
            encoding = "utf-16-le"
        elif body[:2] == b"\x00<":
            encoding = "utf-16-be"
        else:
            declared = _DECLARED_ENCODING.match(body, 0, 256)
            encoding = normalize_charset(declared[1].decode("ascii")) if declared else "utf-8"
    if encoding == "utf-8":
        return body  # libxml2 checks the UTF-8 itself
    try:
        return decode_text(body, encoding).encode("utf-8")
    except UnicodeEncodeError as exc:  # UTF-7 can decode to a lone surrogate, which XML cannot hold
        raise DecodeError(f"body is not valid {encoding}: it holds a lone surrogate") from exc


class XmlCodec:
    """Decodes and encodes the API's DataContract XML bodies.

    Args:
        max_body_bytes: bodies larger than this are refused before parsing.
    """

    media_types: tuple[str, ...] = ("application/xml", "text/xml")

    def __init__(self, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_body_bytes = max_body_bytes

    def __repr__(self) -> str:
        return f"XmlCodec(max_body_bytes={self.max_body_bytes})"

    def decode(self, data: bytes, into: type[T], *, charset: str | None = None) -> T:
        """Decode an XML body into ``into`` (a model, ``Decimal``, ``int``, ``str`` or ``bool``).

        Args:
            charset: the ``Content-Type`` charset, if the response named one; a BOM outranks it.

        Raises:
            DecodeError: the body is too large, hostile, malformed, has the wrong root, or is not a
                valid ``into``; the message says where.
        """
        if len(data) > self.max_body_bytes:
            check_size(data, self.max_body_bytes)
        body = _utf8_body(data, charset)
        forbidden = _FORBIDDEN.search(body)
        if forbidden is not None:
            raise DecodeError(
                f"refused: the document contains <!{forbidden[1].decode()} (Web API never sends "
                "DTDs or entity declarations; they are how XXE and billion-laughs attacks work)"
            )
        try:  # the fast path gives the general path's value, or declines (see _xml_fast)
            return fast_decode(body, into)  # type: ignore[no-any-return]
        except FastPathDeclined:
            pass  # the general path decides, with its own wording
        return read_tree(body, into)

    def encode(self, value: object) -> bytes:
        """Encode a model or scalar as DataContractSerializer would (UTF-8, no declaration).

        Raises:
            EncodeError: the value cannot be written (a character XML 1.0 cannot carry, a NaN).
        """
        try:
            return write_document(value).encode("utf-8")
        except InvalidValue as exc:
            raise EncodeError(f"cannot encode as XML: {exc}") from exc


def read_tree(body: bytes, into: type[T]) -> T:
    """The general path: ``body`` (UTF-8, already screened) parsed into a tree, walked into plain
    values, then typed by the converter."""
    try:
        root = etree.fromstring(body, tree_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        raise DecodeError(
            f"malformed XML at line {line}, column {column}: {exc.msg}", line=line, column=column
        ) from exc
    primitive = PRIMITIVE_ROOTS.get(into)
    if primitive is not None:
        return TEXT_STRUCTURER(_read_primitive(root, primitive), into)
    contract = contract_for(into)
    if contract.bare_list is not None:
        item = contract_for(contract.by_attribute[contract.bare_list].model)  # type: ignore[arg-type]
        if _is_bare_list_of(root.tag, item):
            return TEXT_STRUCTURER(_read_items(root, item, ""), into)
    if root.tag != contract.clark and not contract.inferred:  # an inferred root's name is unknown
        raise DecodeError(
            f"expected root element {_describe_tag(contract.clark)}, found {_describe_tag(root.tag)}"
        )
    if into is ErrorBody:
        return TEXT_STRUCTURER(_read_error(root, contract, ""), into)
    return TEXT_STRUCTURER(_read_object(root, contract, ""), into)


def _describe_tag(tag: str) -> str:
    namespace, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    return f"<{local}> in namespace {namespace!r}" if namespace else f"<{local}> in no namespace"


def _read_primitive(root: Any, names: tuple[str, ...]) -> str:
    if root.tag not in {f"{{{SERIALIZATION_NS}}}{name}" for name in names}:
        expected = " or ".join(f"<{name}>" for name in names)
        raise DecodeError(
            f"expected root element {expected} in namespace {SERIALIZATION_NS!r}, "
            f"found {_describe_tag(root.tag)}"
        )
    if len(root):
        raise DecodeError(f"{_describe_tag(root.tag)} must hold text, not elements")
    if root.get(_XSI_NIL) in _NIL_TRUE:
        raise DecodeError(f"{_describe_tag(root.tag)} is nil")
    return root.text or ""


def _where(path: str, wire: str) -> str:
    return f"{path}.{wire}" if path else wire


def _read_object(element: Any, contract: Contract, path: str) -> dict[str, Any]:
    """The members of ``element`` by wire name: text, None, or (nested) dicts for the typing step."""
    text = element.text
    if text is not None and not text.isspace():
        raise DecodeError(f"{path or contract.name}: expected member elements, found text", path=path or None)
    values: dict[str, Any] = {}
    text_members, other_members = _members_of(contract, element.tag)
    matched = 0
    for child in element:
        tag = child.tag
        wire = text_members.get(tag)
        if wire is not None:  # the hot path: most members hold text
            matched += 1
            text = child.text
            if text is None:
                text = None if child.get(_XSI_NIL) in _NIL_TRUE else _empty(child, _where(path, wire))
            elif len(child):
                raise _mixed_content(_where(path, wire))
            values[wire] = text
            continue
        member = other_members.get(tag)
        if member is None:
            continue  # an unknown member, a comment or a PI: tolerated, as the server's serializer does
        matched += 1
        wire = member.wire
        if child.get(_XSI_NIL) in _NIL_TRUE:
            values[wire] = None
        elif member.kind is Kind.OBJECT:
            assert member.model is not None
            values[wire] = _read_object(child, contract_for(member.model), _where(path, wire))
        else:  # Kind.LIST; a map is HttpError's alone (_read_error)
            assert member.model is not None
            values[wire] = _read_items(child, contract_for(member.model), _where(path, wire))
    if matched != len(values):
        _raise_duplicate(element, contract, path)
    return values


def _read_items(element: Any, item: Contract, path: str) -> list[dict[str, Any]]:
    """The items of a list element: one child per item, named after the item's contract (by
    namespace and name; by local name alone for an inferred contract). Other children are ignored,
    like unknown members."""
    items: list[dict[str, Any]] = []
    for child in element:
        tag = child.tag
        if tag == item.clark or (item.inferred and isinstance(tag, str) and _local_name(tag) == item.name):
            where = f"{path}[{len(items)}]"
            if child.get(_XSI_NIL) in _NIL_TRUE:
                raise DecodeError(f"{where}: a list item is nil", path=where)
            items.append(_read_object(child, item, where))
    return items


def _is_bare_list_of(tag: str, item: Contract) -> bool:
    """``<ArrayOfMadeBooking>`` in the item's namespace: a bare list answer (docs/wire.md)."""
    if item.inferred:
        return _local_name(tag) == f"ArrayOf{item.name}"
    return tag == f"{{{item.namespace}}}ArrayOf{item.name}"


def _local_name(tag: str) -> str:
    return tag.rpartition("}")[2]


def _namespace(tag: str) -> str:
    return tag[1 : tag.index("}")] if tag.startswith("{") else ""


def _members_of(contract: Contract, tag: str) -> tuple[dict[str, str], dict[str, Member]]:
    """The member lookups for an element of ``contract`` whose tag is ``tag``. An inferred
    contract's members are matched in whatever namespace the element itself is in."""
    if not contract.inferred:
        return _MEMBER_LOOKUP[contract.model]
    return _inferred_lookup(contract, _namespace(tag))


@functools.lru_cache(maxsize=64)  # a few namespaces per inferred contract; bounded for hostile ones
def _inferred_lookup(contract: Contract, namespace: str) -> tuple[dict[str, str], dict[str, Member]]:
    moved = [attrs.evolve(m, namespace=namespace) for m in contract.members]
    return (
        {m.clark: m.wire for m in moved if m.kind is Kind.SCALAR},
        {m.clark: m for m in moved if m.kind is not Kind.SCALAR},
    )


def _empty(child: Any, where: str) -> str:
    """A text member with no text and no ``i:nil``: the empty string, unless it holds elements."""
    if len(child):
        raise _mixed_content(where)
    return ""


def _read_error(element: Any, contract: Contract, path: str) -> dict[str, Any]:
    """ASP.NET's ``HttpError``, a dictionary rather than a data contract (docs/api.md, "Error
    bodies"): members in no namespace, an empty element for null, ``InnerException`` another one,
    and ``ModelState`` one element per key, named by it (``<request.BookingID>``)."""
    text = element.text
    if text is not None and not text.isspace():
        raise DecodeError(f"{path or contract.name}: expected member elements, found text", path=path or None)
    values: dict[str, Any] = {}
    for child in element:
        member = contract.by_clark.get(child.tag)
        if member is None:
            continue  # an unknown member, a comment or a PI
        wire, where = member.wire, _where(path, member.wire)
        if wire in values:
            raise DecodeError(f"{where}: the element appears twice", path=where)
        if member.kind is Kind.SCALAR:
            if len(child) and (child.text is not None or child.get(_XSI_NIL) not in _NIL_TRUE):
                raise _mixed_content(where)
            values[wire] = child.text  # None for an empty element too: HttpError writes null so
        elif child.get(_XSI_NIL) in _NIL_TRUE:
            values[wire] = None
        elif member.kind is Kind.OBJECT:
            values[wire] = _read_error(child, contract, where)
        else:  # Kind.MAP
            values[wire] = {
                entry.tag.rpartition("}")[2]: [entry.text or ""]
                for entry in child
                if isinstance(entry.tag, str)
            }
    return values


def _mixed_content(where: str) -> DecodeError:
    return DecodeError(f"{where}: expected text, found elements", path=where)


def _raise_duplicate(element: Any, contract: Contract, path: str) -> None:
    text_members, other_members = _members_of(contract, element.tag)
    seen: set[str] = set()
    for child in element:
        member = other_members.get(child.tag)
        wire = text_members.get(child.tag) or (member.wire if member else None)
        if wire in seen:
            raise DecodeError(f"{_where(path, wire)}: the element appears twice", path=_where(path, wire))
        if wire is not None:
            seen.add(wire)


# Per contract, element name -> wire name for the members that hold text, and element name ->
# member for the others (nested objects, maps): one dict lookup per element on the hot path.
_MEMBER_LOOKUP: dict[type, tuple[dict[str, str], dict[str, Member]]] = {
    model: (
        {m.clark: m.wire for m in contract.members if m.kind is Kind.SCALAR},
        {m.clark: m for m in contract.members if m.kind is not Kind.SCALAR},
    )
    for model, contract in CONTRACTS.items()
}
