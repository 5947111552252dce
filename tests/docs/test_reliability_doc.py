"""RELIABILITY.md names the tests that prove each guarantee: every one of them must exist."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def defined_in(path: str) -> frozenset[str]:
    """Every function a test file defines (each file is read once, however often it is named)."""
    tree = ast.parse((ROOT / path).read_text())
    return frozenset(
        node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def test_every_test_named_in_reliability_md_exists() -> None:
    text = (ROOT / "RELIABILITY.md").read_text()
    references = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", text)
    assert len(references) > 30
    for path, name in references:
        assert (ROOT / path).is_file(), f"RELIABILITY.md names {path}, which does not exist"
        if name:
            assert name in defined_in(path), f"RELIABILITY.md names {path}::{name}, which does not exist"
    for name in re.findall(r"`::(\w+)`", text):  # "::name" continues the file named before it
        assert any(name in defined_in(p) for p, _ in references), f"RELIABILITY.md names ::{name}"
