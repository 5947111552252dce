"""What the PostgresJournal scenario tests (tests/processes/test_postgres_scenarios.py) run on: a
sandbox whose requests can be held at gates, the README's web example as worker processes and the clicks they
answer, batch workers, and the journal as the database holds it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import sys
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from aw_async.sandbox import SandboxServer

from .._pg_support import sql, until
from ..scripted import past_booking
from ._hosts import Worker

TOKEN = "scenario-token"
USER = 61
BOOKINGS = 2000
RESCHEDULE = "RescheduleMadeBooking"

T = TypeVar("T")


# --- the sandbox, with gates -----------------------------------------------------------------------


class Gate:
    """Holds the next ``times`` requests that match it (each with its body read) until the test
    opens it."""

    def __init__(self, method: str, path: str, times: int) -> None:
        self.method = method
        self.path = path.lower()
        self.times = times
        self.held = 0
        self.arrived = asyncio.Event()  # the first of them
        self.opened = asyncio.Event()

    def matches(self, request: web.Request) -> bool:
        return self.held < self.times and self.method == request.method and self.path in request.path.lower()

    def open(self) -> None:
        self.opened.set()


class GatedSandbox(SandboxServer):
    """The sandbox, with :class:`Gate`s: a request held at a gate is served as usual once the gate
    opens, even if whoever sent it is gone by then (aiohttp does not cancel a handler whose client
    went away), as a server that received a request processes it."""

    def __init__(self) -> None:
        super().__init__()
        self._gates: list[Gate] = []

    def gate(self, method: str, path: str, *, times: int = 1) -> Gate:
        gate = Gate(method, path, times)
        self._gates.append(gate)
        return gate

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        gate = next((g for g in self._gates if g.matches(request)), None)
        if gate is not None:
            gate.held += 1
            await request.read()  # the whole request arrived: it no longer needs its sender
            gate.arrived.set()
            await gate.opened.wait()
        return await super()._serve(request)


def bookings(server: SandboxServer) -> None:
    for n in range(1, BOOKINGS + 1):
        # distinct comments: a reconciliation must be able to tell the bookings apart
        server.add_booking(past_booking(n, credits="2", comments=f"booking {n}"), client_user_id=USER)


#: The scenario modules' sandbox (tests/conftest.py's fixture, seeded so): ``pytestmark = SANDBOX``.
SANDBOX = pytest.mark.sandbox(server=GatedSandbox, token=TOKEN, user=USER, balance=1_000_000, seed=bookings)


def counts(sandbox: SandboxServer, ids: range) -> list[int]:
    return [sandbox.reschedule_count(n) for n in ids]


def posts(sandbox: SandboxServer) -> int:
    """How many reschedule POSTs reached the sandbox (one held at a gate has not, yet)."""
    return sum(1 for r in sandbox.requests if r.method == "POST" and RESCHEDULE in r.path)


# --- the journal, as the database holds it ---------------------------------------------------------


async def entry_of(dsn: str, booking_id: int) -> dict[str, Any]:
    """The booking's row, with whether its owner's lock is held (read as any other session would)."""
    rows = await sql(
        dsn,
        "SELECT state, attempt, owner, decided_by, new_booking_id, started_at, settle_seconds,"
        " aw_async.owner_alive(owner_key) AS alive FROM aw_async.attempts WHERE booking_id = $1",
        booking_id,
    )
    assert len(rows) == 1, rows
    return dict(rows[0])


async def owner_gone(dsn: str, booking_id: int) -> dict[str, Any]:
    """The booking's row once its owner's session has ended (the server notices a dead client at
    once, yet asynchronously)."""

    async def gone() -> bool:
        return not (await entry_of(dsn, booking_id))["alive"]

    await until(gone, f"the owner of booking {booking_id} gone")
    return await entry_of(dsn, booking_id)


async def age_past_its_window(dsn: str, booking_ids: list[int]) -> None:
    """Move the attempts' start (both anchors) back by their settle window: the database's clock,
    which measures every age, then says the window has passed."""
    await sql(
        dsn,
        "UPDATE aw_async.attempts SET started_at = started_at - make_interval(secs => settle_seconds + 1),"
        " server_started_at = server_started_at - make_interval(secs => settle_seconds + 1)"
        " WHERE booking_id = ANY($1::bigint[])",
        booking_ids,
    )


def host_of(owner: str) -> str:
    """The host name in an owner token (``pg:KEY@HOST:PID``)."""
    return owner.partition("@")[2].rpartition(":")[0]


# --- web workers: the README's example -------------------------------------------------------------


class WebWorker(Worker):
    """A worker serving the README's web example (tests/processes/web_worker.py), once :meth:`ready`."""

    url = ""
    host = ""
    inner_pid = 0

    async def ready(self) -> None:
        assert self.process.stdout is not None
        line = (await self.process.stdout.readline()).decode().split()
        assert line[:1] == ["listening"], f"{self.name} did not start:\n{self.errors()}"
        self.url = f"http://127.0.0.1:{line[1]}"
        self.host, self.inner_pid = line[2], int(line[3])

    def kill(self) -> None:
        self.send(signal.SIGKILL)


@contextlib.asynccontextmanager
async def web_workers(
    sandbox: SandboxServer, dsn: str, logs: Path, count: int, *, client_timeout: float | None = None
) -> AsyncIterator[list[WebWorker]]:
    """``count`` workers serving the README's web example, on hosts ``web-1``..., sharing the journal
    at ``dsn`` and nothing else."""
    argv = [sys.executable, "-m", "tests.processes.web_worker", "0", TOKEN, sandbox.url, dsn]
    argv += [str(client_timeout)] if client_timeout is not None else []
    workers: list[WebWorker] = []
    try:
        for n in range(1, count + 1):
            workers.append(await WebWorker.start(f"web-{n}", argv, logs))
        await asyncio.gather(*(w.ready() for w in workers))
        yield workers
    finally:
        await asyncio.gather(*(w.close() for w in workers))


@contextlib.asynccontextmanager
async def clicking() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        yield http


async def click(http: aiohttp.ClientSession, worker: WebWorker, booking_id: int) -> tuple[int, str]:
    """A user's click on the worker's reschedule button: the answer's status and text."""
    async with http.post(f"{worker.url}/bookings/{booking_id}/reschedule") as response:
        return response.status, await response.text()


def later(work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``work`` as a task of its own (a click whose answer the test awaits later). If the test fails
    before awaiting it, its own failure (the worker closed under it) is not reported again."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    return task


def rescheduled_as(text: str) -> int:
    """The new booking a 200 names."""
    return int(json.loads(text)["booking_id"])


def already_rescheduled_as(text: str) -> int | None:
    """The new booking a 409 "already rescheduled" names."""
    found = re.search(r"already rescheduled as booking (\d+)", text)
    return int(found.group(1)) if found else None


def retry_after_of(text: str) -> int | None:
    """The wait a 504 for an attempt of unknown outcome advises (``OutcomeUnknownError.retry_after``)."""
    found = re.search(r"call again in (\d+) s", text)
    return int(found.group(1)) if found else None


# --- batch workers, and work in the background ------------------------------------------------------


def batch(sandbox: SandboxServer, dsn: str, ids: range, concurrency: int) -> list[str]:
    """A batch worker's command line (tests/processes/journal_worker.py): ``ids`` at ``concurrency``."""
    worker = [sys.executable, "-m", "tests.processes.journal_worker"]
    return [*worker, sandbox.url, TOKEN, dsn, str(concurrency), *map(str, ids)]


async def run_batch(name: str, argv: list[str], logs: Path) -> dict[int, str]:
    """Run a batch worker to its end on the host ``name``: each booking's outcome (``ok`` or an
    error's type)."""
    worker = await Worker.start(name, argv, logs)
    try:
        out, _ = await worker.process.communicate()
    except BaseException:
        worker.abort()  # a batch worker does not stop when asked: as PID 1 it ignores SIGTERM
        raise
    finally:
        await worker.close()
    assert worker.process.returncode == 0, worker.errors()
    outcomes = {}
    for line in out.decode().splitlines():
        booking, outcome, *_ = line.split()
        outcomes[int(booking)] = outcome
    return outcomes


@contextlib.asynccontextmanager
async def in_background(work: Coroutine[Any, Any, T]) -> AsyncIterator[asyncio.Task[T]]:
    """``work`` running as a task, cancelled (and waited for) if the test leaves without it."""
    task = asyncio.ensure_future(work)
    try:
        yield task
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
