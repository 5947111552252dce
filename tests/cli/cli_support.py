"""Running the command line in tests: in-process (``main(argv)``) against a real sandbox on loopback.

``main`` runs an event loop of its own (``asyncio.run``), so a test that calls it is synchronous and
the sandbox is served by a loop in a thread of its own (:class:`ServedSandbox`). Its state may be
read and seeded from the test between two runs (nothing is being served then); what must happen
while a run is under way is done by wrapping the sandbox's state, which its own thread calls.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest

from aw_async.cli import main
from aw_async.models import MadeBooking
from aw_async.sandbox import DemoData, SandboxServer, seed_demo

T = TypeVar("T")

#: Every variable the command line takes its settings or credentials from.
CLI_VARIABLES = (
    "AW_ACCESS_TOKEN",
    "AW_REFRESH_TOKEN",
    "AW_CLIENT_ID",
    "AW_CLIENT_SECRET",
    "AW_TOKEN_URL",
    "AW_BASE_URL",
    "AW_ASYNC_JOURNAL",
)
ROOT = Path(__file__).resolve().parents[2]


def forget_cli_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test's command line sees only the variables the test sets, never the developer's."""
    for name in CLI_VARIABLES:
        monkeypatch.delenv(name, raising=False)


class ServedSandbox:
    """A :class:`SandboxServer` seeded with :func:`seed_demo`, served from a thread of its own."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sandbox", daemon=True)
        self.thread.start()
        self.server = SandboxServer()
        self.on_loop(self.server.start())
        self.demo: DemoData = seed_demo(self.server)

    @property
    def url(self) -> str:
        return self.server.url

    def at(self, token: str | None = None) -> list[str]:
        """``--base-url`` and ``--token`` (the demo user's unless another is given)."""
        return ["--base-url", self.url, "--token", token or self.demo.token]

    def on_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` on the sandbox's loop, and wait for it."""
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=60)

    def after_each_reschedule(self, then: Callable[[MadeBooking], None]) -> None:
        """Call ``then`` (on the sandbox's thread) each time the sandbox has rescheduled a booking,
        before it answers."""
        state = self.server.state
        reschedule = state.reschedule

        def rescheduled(user_id: int, booking_id: int) -> MadeBooking:
            new = reschedule(user_id, booking_id)
            then(new)
            return new

        state.reschedule = rescheduled  # type: ignore[method-assign]

    def expire_every_access_token(self) -> None:
        """Every access token the sandbox has accepted so far expires now (the next request that
        uses one gets a 401)."""
        for token in list(self.server.state.tokens):
            self.server.expire_token(token)

    def live_refresh_tokens(self) -> set[str]:
        return set(self.server.state.refresh_tokens)

    def paths(self) -> list[str]:
        """The last segment of every request's path, in order (``OAuth/token`` is ``token``)."""
        return [request.path.rsplit("/", 1)[-1] for request in self.server.requests]

    def close(self) -> None:
        self.on_loop(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=60)
        self.loop.close()


@contextmanager
def served_sandbox() -> Iterator[ServedSandbox]:
    served = ServedSandbox()
    try:
        yield served
    finally:
        served.close()


class Ran(NamedTuple):
    """What a run of the command line did (a tuple: ``(code, out, err)``)."""

    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    def objects(self) -> list[dict[str, Any]]:
        """stdout as JSON lines."""
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


class Cli:
    """``aw-async`` run in this process, its output captured."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys

    def __call__(self, *argv: str) -> Ran:
        self.capsys.readouterr()  # only this run's output
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
        out, err = self.capsys.readouterr()
        return Ran(code, out, err)


def run_process(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> Ran:
    """``python -m aw_async ARGS`` in a process of its own (the sandbox keeps serving meanwhile)."""
    done = subprocess.run(
        [sys.executable, "-m", "aw_async", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=timeout,
        cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if k not in CLI_VARIABLES}, **(env or {})},
    )
    return Ran(done.returncode, done.stdout, done.stderr)
