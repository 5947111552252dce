"""Worker processes on "hosts" of their own, for the tests that share a PostgresJournal between
processes that share nothing else.

Each worker runs in a UTS namespace (a host name of its own) and a PID namespace (PIDs of its own:
every worker is PID 1 there, as two containers' main processes are) where ``unshare`` can make them
(as root, on a kernel and in a container that allow it). ``unshare --pid --fork --kill-child
--mount-proc`` forks the worker and kills it if ``unshare`` dies, so no worker outlives its test.
Elsewhere the workers are plain processes of this host, and :func:`namespaces_unavailable` says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[2]
UNSHARE_OPTIONS = ("--uts", "--pid", "--fork", "--kill-child", "--mount-proc")
# `hostname` sets the name inside the new UTS namespace only; then the worker replaces the shell.
SET_HOST_NAME = 'hostname "$0" && exec "$@"'
_CLOSE_WAIT = 30.0  # seconds a worker asked to stop may take before it is killed


@functools.cache
def namespaces_unavailable() -> str | None:
    """Why workers cannot have hosts of their own here, or None when they can."""
    if os.geteuid() != 0:
        return "not root: unshare cannot make UTS and PID namespaces, so the workers share this host"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare on PATH (util-linux), so the workers share this host"
    try:
        done = subprocess.run(
            [unshare, *UNSHARE_OPTIONS, "true"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unshare could not run ({exc}), so the workers share this host"
    if done.returncode != 0:
        return (
            f"unshare {' '.join(UNSHARE_OPTIONS)} is refused here ({done.stderr.strip()}), "
            "so the workers share this host"
        )
    return None


def on_host(name: str, argv: list[str]) -> list[str]:
    """``argv`` run on a host named ``name`` (or as it is, when that cannot be had)."""
    unshare = shutil.which("unshare")
    if namespaces_unavailable() is not None or unshare is None:
        return argv
    return [unshare, *UNSHARE_OPTIONS, "sh", "-c", SET_HOST_NAME, name, *argv]


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:  # a kernel without that file: read every process's parent
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rpartition(")")[2].split()
                if int(fields[1]) == pid:
                    found.append(int(stat.parent.name))
        return found


class Worker:
    """A worker process, started by :meth:`start`. Its standard error goes to :attr:`log`."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.log = log

    @classmethod
    async def start(cls, name: str, argv: list[str], logs: Path) -> Self:
        """Start ``argv`` (from the repository's root) on the host ``name``."""
        log = logs / f"{name}.log"
        with log.open("wb") as errors:
            process = await asyncio.create_subprocess_exec(
                *on_host(name, argv), cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=errors
            )
        return cls(name, process, log)

    @property
    def pid(self) -> int:
        """The worker's PID here (in the test's PID namespace): ``unshare``'s child, or the process.
        Valid once the worker has shown it runs (it printed something)."""
        if namespaces_unavailable() is not None:
            return self.process.pid
        children = children_of(self.process.pid)
        if len(children) != 1:
            raise AssertionError(f"{self.name}: unshare has children {children}; its log:\n{self.errors()}")
        return children[0]

    def send(self, sent: signal.Signals) -> None:
        """Send the worker a signal (SIGKILL, SIGSTOP and SIGCONT reach a PID 1 from here)."""
        os.kill(self.pid, sent)

    def errors(self) -> str:
        """What the worker wrote on its standard error so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def abort(self) -> None:
        """Kill the worker where it stands (through ``unshare``, whose ``--kill-child`` takes it too)."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def close(self) -> None:
        """Ask the worker to stop (SIGCONT, then SIGTERM); kill it if it does not."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, AssertionError):
                pid = self.pid
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), _CLOSE_WAIT)
            except TimeoutError:
                self.abort()
                await self.process.wait()
