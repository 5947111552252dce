"""What the two fast paths (:mod:`._json_fast`, :mod:`._xml_fast`) share: the switch that turns them
off, how they decline and count it, which models they serve, and the generated builders they end with.

**Switching them off.** ``AW_ASYNC_FAST_PATHS=0`` in the environment when aw_async is imported (also
``false``, ``off`` or ``no``, in any case) turns both fast paths off: every decode then takes the
general path, which gives the same values (the differential tests hold the two to it), so a
suspected fast-path bug can be ruled in or out by rerunning with it set.

**Declines.** A fast path gives the general path's value or declines (:class:`FastPathDeclined`), and
the general path decides. Each decline is logged at DEBUG on the ``aw_async`` logger, with the format,
the model and the reason (never the body's values), and counted: :func:`fast_path_declines` gives the
counts by format and reason. A fast path that declines the server's usual answers is a bug that
would otherwise show only as a slower benchmark.

**Builders.** A builder is a straight-line function that makes a frozen model without its
``__init__``: one line a slot, each slot set through its own descriptor (a frozen class's
``__setattr__`` refuses; the slot descriptor does not). That equals ``Model(**values)`` only while the
models have no validators, converters or post-init hooks, which ``tests/codecs/test_json_fast.py`` holds them
to. Its source is registered with :mod:`linecache` under a filename of its own (``<aw_async generated
JSON builder of MadeBooking #1>``), so a traceback shows its lines and :func:`inspect.getsource` reads
it; the function keeps it as ``build.__source__``. Its names are the members': ``set_booking_id``,
``read_create_date``.
"""

from __future__ import annotations

import collections
import itertools
import linecache
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .. import models
from ..models import ErrorBody
from ._contracts import CONTRACTS, Contract, Kind

__all__ = [
    "FAST_PATHS_ON",
    "BuilderSource",
    "FastDecode",
    "FastPathDeclined",
    "compile_builder",
    "declined",
    "fast_path_declines",
    "served_contracts",
    "switch_setting",
    "switched_off",
    "wrapped",
]

log = logging.getLogger("aw_async")

FastDecode = Callable[[bytes, type], Any]
"""A fast path's entry point: ``(body, into) -> value``, or :class:`FastPathDeclined`."""

_OFF = frozenset(("0", "false", "off", "no"))


def switch_setting(value: str | None) -> bool:
    """Whether ``AW_ASYNC_FAST_PATHS=value`` leaves the fast paths on (unset: on)."""
    return value is None or value.strip().lower() not in _OFF


#: False when ``AW_ASYNC_FAST_PATHS`` turned the fast paths off at import.
FAST_PATHS_ON = switch_setting(os.environ.get("AW_ASYNC_FAST_PATHS"))


class FastPathDeclined(Exception):
    """A fast path declines: the general path decides, with its own wording."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


_declines: dict[str, collections.Counter[str]] = {"json": collections.Counter(), "xml": collections.Counter()}
_declines_lock = threading.Lock()  # only a decline takes it; a value the fast path gives does not


def declined(format_name: str, reason: str, into: type, *, unexpected: bool = False) -> FastPathDeclined:
    """Log and count a decline, and return the exception that says it: each fast path's entry point
    calls this once per decline, whatever declined inside it. ``reason`` is one of a few fixed phrases
    (it keys a counter); ``unexpected`` logs the exception being handled with its traceback, since that
    is a bug in the fast path rather than a body it does not serve."""
    with _declines_lock:
        _declines[format_name][reason] += 1
    log.debug(
        "%s fast path declined %s: %s",
        format_name.upper(),
        getattr(into, "__name__", into),
        reason,
        exc_info=unexpected,
    )
    return FastPathDeclined(reason)


def fast_path_declines(*, reset: bool = False) -> dict[str, dict[str, int]]:
    """How often each fast path has declined, by format (``"json"``, ``"xml"``) and reason, since
    the process started or the last reset::

        {"json": {"not a model the fast path serves": 2}, "xml": {}}

    Args:
        reset: set the counts back to zero, after reading them.
    """
    with _declines_lock:
        counts = {format_name: dict(counter) for format_name, counter in _declines.items()}
        if reset:
            for counter in _declines.values():
                counter.clear()
    return counts


def switched_off(format_name: str) -> FastDecode:
    """The entry point of a fast path that ``AW_ASYNC_FAST_PATHS`` turned off: it always declines."""

    def fast_decode(data: bytes, into: type) -> Any:
        raise declined(format_name, "switched off by AW_ASYNC_FAST_PATHS", into)

    return fast_decode


def served_contracts() -> list[Contract]:
    """The contracts the fast paths serve, nested ones before those that hold them: the answers'
    models (never a request, which only the sandbox decodes, nor ErrorBody, which is ASP.NET's
    ``HttpError`` dictionary rather than a data contract)."""
    served = [
        contract
        for contract in CONTRACTS.values()
        if contract.model.__module__ == models.__name__ and contract.model is not ErrorBody
    ]
    # Nested contracts first: a booking needs its candidate's, a page its bookings'.
    return sorted(served, key=lambda c: sum(m.kind is not Kind.SCALAR for m in c.members))


# Names a generated builder gives its own locals and parameters, which no member may take.
_RESERVED = frozenset(("made", "wire", "groups", "lists"))


class BuilderSource:
    """The source of one builder being written: its lines, and the names its lines may use.

    Args:
        title: what it builds, for its filename (``JSON builder of MadeBooking``).
        parameters: the function's parameters, as written in its ``def``.
    """

    def __init__(self, title: str, model: type, parameters: str) -> None:
        self.title = title
        self.model = model
        self.parameters = parameters
        """The function's parameters, as its ``def`` writes them; may be set until it is compiled."""
        self.namespace: dict[str, Any] = {
            "_new": object.__new__,
            "_model": model,
            "_Declined": FastPathDeclined,
        }
        self.lines = ["    made = _new(_model)"]

    def bind(self, name: str, value: Any) -> str:
        """Make ``value`` available to the code as ``name``."""
        if self.namespace.setdefault(name, value) is not value:
            raise ValueError(f"{self.title}: the name {name} is bound twice")
        return name

    def setter(self, attribute: str) -> str:
        """``set_<attribute>``: the function that sets ``attribute`` on ``made``."""
        if attribute in _RESERVED or attribute.startswith("_"):
            raise ValueError(f"{self.title}: a member named {attribute!r} would shadow the builder's own")
        return self.bind(f"set_{attribute}", self.model.__dict__[attribute].__set__)

    def reader(self, attribute: str, read: Callable[..., Any]) -> str:
        """``read_<attribute>``: the reader of ``attribute``'s value."""
        return self.bind(f"read_{attribute}", read)

    def line(self, code: str) -> None:
        self.lines.append(f"    {code}")

    def unpack(self, names: list[str], value: str, *, first: bool = False) -> None:
        """Lines that unpack the tuple ``value`` into ``names``; ``first``: before every other line."""
        lines = wrapped("    (", names, f") = {value}")
        if first:
            self.lines[1:1] = lines
        else:
            self.lines.extend(lines)


def wrapped(opening: str, names: list[str], closing: str) -> list[str]:
    """``opening`` + ``names`` comma-separated + ``closing``, in lines of about 100 characters; the
    lines after the first are indented four spaces deeper than it."""
    indent = " " * (len(opening) - len(opening.lstrip()) + 4)
    lines, row = [], opening
    for name in names:
        if len(row) + len(name) > 100:
            lines.append(row.rstrip())
            row = indent
        row += f"{name}, "
    lines.append(f"{row.rstrip()}{closing}")
    return lines


_serial = itertools.count(1)
# (title, source) -> filename: a list item's builder is compiled again for each prefix spelling, and
# its lines stay the same, so the cache holds one entry per builder however many spellings come.
_filenames: dict[tuple[str, str], str] = {}


def compile_builder(source: BuilderSource) -> Callable[..., Any]:
    """The function ``source`` spells, with its source in :mod:`linecache` under its own name."""
    text = "\n".join([f"def build({source.parameters}):", *source.lines, "    return made", ""])
    filename = _filenames.get((source.title, text))
    if filename is None:
        filename = _filenames[source.title, text] = f"<aw_async generated {source.title} #{next(_serial)}>"
        # mtime None: linecache.checkcache keeps the entry (there is no file to compare it with).
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
    exec(compile(text, filename, "exec"), source.namespace)
    build: Callable[..., Any] = source.namespace["build"]
    build.__source__ = text  # type: ignore[attr-defined]
    return build
