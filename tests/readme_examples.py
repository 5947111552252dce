"""The README's code blocks, to run as they are written (tests and worker processes load them here)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

README = Path(__file__).resolve().parent.parent / "README.md"


def example_source(name: str) -> str:
    """The README's ``<!-- example: name -->`` code block."""
    match = re.search(rf"<!-- example: {name} -->\n```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match, f"README has no example {name!r}"
    return match.group(1)


def example(name: str) -> dict[str, Any]:
    """Run the README's ``<!-- example: name -->`` code block and return what it defined."""
    namespace: dict[str, Any] = {"__name__": f"readme_{name}"}
    exec(compile(example_source(name), f"README.md:{name}", "exec"), namespace)
    return namespace
