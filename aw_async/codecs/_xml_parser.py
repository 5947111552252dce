"""The hardened lxml parser, the one place its settings live: both XML paths parse with it (the
general path in :mod:`._xml` to build a tree, the fast path in :mod:`._xml_fast` only to check a
document), so neither depends on the other for its security.

The settings (docs/wire.md, "XML"): the body is UTF-8 by the time it is parsed (which overrides any
declaration); no entity expansion, no DTD, no network, no recovery, and no huge trees (libxml2 then
refuses nesting deeper than 256 levels). Comments and processing instructions are left in the tree
(removing them costs libxml2 10% of its time) and skipped by the general path's walk: their tag is not
a string, so they match no member.

lxml advises one parser per thread (sharing one is safe but slow), so each thread gets its own, built
on first use.
"""

from __future__ import annotations

import threading
import typing
from typing import Any

from lxml import etree

__all__ = ["HARDENED_PARSER", "tree_parser", "validating_parser"]

#: The options that keep XML harmless; every parser of a body is made with exactly these.
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


class _ValidateOnlyTarget:
    """A parser target with no callbacks: libxml2 checks the document and builds nothing, which
    costs about 60% of building a tree."""

    def close(self) -> None:
        return None


class _PerThread(threading.local):
    tree: etree.XMLParser | None = None
    validating: etree.XMLParser | None = None


_parsers = _PerThread()


def tree_parser() -> etree.XMLParser:
    """This thread's hardened parser that builds a tree (the general path's)."""
    parser = _parsers.tree
    if parser is None:
        parser = _parsers.tree = etree.XMLParser(**HARDENED_PARSER)
    return parser


def validating_parser() -> etree.XMLParser:
    """This thread's hardened parser that only checks a document, and builds nothing:
    ``etree.fromstring(body, it)`` raises ``XMLSyntaxError`` for a body that is not well-formed,
    and leaves a namespace error (an undeclared prefix, ``xmlns:p=""``) in ``it.error_log`` without
    raising, where the general path's parser refuses it: a caller checks both."""
    parser = _parsers.validating
    if parser is None:
        parser = _parsers.validating = etree.XMLParser(
            target=typing.cast(Any, _ValidateOnlyTarget()), **HARDENED_PARSER
        )
    return parser
