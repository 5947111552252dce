"""The command line's tests: the sandbox served from a thread of its own (``main`` runs its own event
loop), the command line run in-process, and none of the developer's variables."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from .cli_support import Cli, ServedSandbox, forget_cli_variables, served_sandbox


@pytest.fixture(autouse=True)
def _only_the_tests_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    forget_cli_variables(monkeypatch)


@pytest.fixture
def sandbox(request: pytest.FixtureRequest) -> Iterator[ServedSandbox]:
    """The demo's sandbox (:func:`aw_async.sandbox.seed_demo`), served from a thread. A module or test
    may add to it with ``pytest.mark.sandbox(seed=...)``, called with the :class:`ServedSandbox`."""
    marker = request.node.get_closest_marker("sandbox")
    if marker and (marker.args or set(marker.kwargs) - {"seed"}):
        raise TypeError("in tests/cli, pytest.mark.sandbox takes seed= only (the demo is seeded already)")
    with served_sandbox() as served:
        seed: Callable[[ServedSandbox], object] | None = marker.kwargs.get("seed") if marker else None
        if seed:
            seed(served)
        yield served


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    """``aw-async ARGS`` in this process: ``cli("balance", ...)`` gives its ``(code, out, err)``."""
    return Cli(capsys)
