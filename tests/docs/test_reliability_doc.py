"""RELIABILITY.md names the tests that prove each guarantee: every one of them must exist."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_test_named_in_reliability_md_exists() -> None:
    text = (ROOT / "RELIABILITY.md").read_text()
    references = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?", text)
    assert len(references) > 30
    current_file = None
    for path, name in references:
        file = ROOT / path
        assert file.is_file(), f"RELIABILITY.md names {path}, which does not exist"
        current_file = file
        if name:
            tree = ast.parse(current_file.read_text())
            defined = {
                node.name
                for node in ast.walk(tree)
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            assert name in defined, f"RELIABILITY.md names {path}::{name}, which does not exist"
    for name in re.findall(r"`::(\w+)`", text):  # "::name" continues the file named before it
        assert any(name in (ROOT / p).read_text() for p, _ in references), f"RELIABILITY.md names ::{name}"
