"""What the two fast paths (:mod:`._json_fast`, :mod:`._xml_fast`) share: how they decline, which
models they serve, and the generated builders they end with.

A builder is a straight-line function that makes a frozen model without its ``__init__``: one line a
slot, each slot set through its own descriptor (a frozen class's ``__setattr__`` refuses; the slot
descriptor does not). That equals ``Model(**values)`` only while the models have no validators,
converters or post-init hooks, which ``tests/test_json_fast.py`` holds them to.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["MODELS_MODULE", "BuilderSource", "FastPathDeclined", "compile_builder"]

#: The fast paths serve the answers' models, the ones defined there (never a request, never HttpError).
MODELS_MODULE = "aw_async.models"


class FastPathDeclined(Exception):
    """A fast path declines: the general path decides, with its own wording."""


class BuilderSource:
    """The source of one builder being written: its lines, and the names its lines may use."""

    def __init__(self, model: type, arguments: str) -> None:
        self.model = model
        self.namespace: dict[str, Any] = {"_new": object.__new__, "_model": model}
        self.lines = [f"def build({arguments}):", "    made = _new(_model)"]

    def bind(self, name: str, value: Any) -> str:
        """Make ``value`` available to the code as ``name``."""
        self.namespace[name] = value
        return name

    def setter(self, attribute: str, index: int) -> str:
        """The name of the function that sets ``attribute`` on ``made``."""
        return self.bind(f"set{index}", self.model.__dict__[attribute].__set__)

    def line(self, code: str) -> None:
        self.lines.append(f"    {code}")


def compile_builder(source: BuilderSource) -> Callable[..., Any]:
    """The function ``source`` spells, named after its model in tracebacks."""
    text = "\n".join([*source.lines, "    return made"])
    code = compile(text, f"<aw_async fast builder of {source.model.__name__}>", "exec")
    exec(code, source.namespace)
    return source.namespace["build"]  # type: ignore[no-any-return]
