"""The test process's children, read from /proc (psutil is not a test dependency), for the fixture
in tests/conftest.py that fails a test which leaves one running.

Scanning /proc costs a millisecond or so, so it is done only after a test that started a process:
:func:`started` counts every :class:`subprocess.Popen` (asyncio's subprocesses are Popens too) and
every ``os.fork``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

_started = 0


def started() -> int:
    """How many processes this process has started so far."""
    return _started


def _count(*args: object) -> None:
    global _started
    _started += 1


def watch() -> None:
    """Count from now on (once per session)."""
    execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def counted(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> Any:
        _count()
        return execute_child(self, *args, **kwargs)

    subprocess.Popen._execute_child = counted  # type: ignore[attr-defined]
    os.register_at_fork(after_in_parent=_count)


def running_children(pid: int | None = None) -> dict[int, str]:
    """``{pid: command}`` for each child of ``pid`` (this process) that has not exited (zombies,
    exited and waiting to be reaped, are not counted)."""
    parent = os.getpid() if pid is None else pid
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == parent and state not in ("Z", "X"):
            found[int(entry.name)] = _command(entry) or stat.split("(", 1)[1].rsplit(")", 1)[0]
    return found


def _command(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def left_running(before: set[int], grace: float = 2.0) -> dict[int, str]:
    """The children not in ``before`` still running after ``grace`` seconds (a process killed a moment
    ago may still be on its way out); each is killed, so that it cannot outlive the test run."""
    deadline = time.monotonic() + grace
    while True:
        left = {pid: command for pid, command in running_children().items() if pid not in before}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


class Watch:
    """What was running before a test, known without a scan unless a process was started since the
    last one (children appear only by being started)."""

    def __init__(self) -> None:
        self.counted = started()
        self.known: set[int] = set()

    def before_test(self) -> None:
        if started() != self.counted:  # started outside a test (a session fixture): look again
            self.known, self.counted = set(running_children()), started()

    def after_test(self, grace: float = 2.0) -> dict[int, str]:
        """The children the test left running (killed now), if it started any."""
        if started() == self.counted:
            return {}
        left = left_running(self.known, grace)
        self.known, self.counted = set(running_children()), started()
        return left
