"""Whether an owner is alive, asked of the operating system: a lock on a file beside the journal.

Each :class:`~aw_async.journal.SqliteJournal` (in each process) holds a write lock on one byte of
``<journal>.owners``, at an offset of its own chosen at random (its *slot*); its owner token names
that slot. The kernel drops the lock when the process dies (``kill -9`` included), and keeps it while
the process lives, stopped (SIGSTOP, Ctrl-Z) or not. Another process tells whether an owner is alive
by asking whether anyone holds that byte: a question to the kernel about a file, so it is answered
the same in every PID namespace that shares the file system (a container with host networking), and
a reused pid can neither keep a dead owner alive nor kill a live one. No clock is involved.

Locks are open-file-description locks (``F_OFD_SETLK``, Linux 3.15 and later), which belong to the
open file, not to the process, so two journals of one process are two owners. Where those are
missing (macOS), classic POSIX record locks are used: they belong to the process, so all journals of
a process share one descriptor of the file, and a journal of this process answers for its own slots.
A child made by ``fork`` gets a slot of its own on its first use.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import socket
import struct
import threading
from pathlib import Path

__all__ = ["OwnerLock"]

_OFD = hasattr(fcntl, "F_OFD_SETLK")
_SET = fcntl.F_OFD_SETLK if _OFD else fcntl.F_SETLK
_GET = fcntl.F_OFD_GETLK if _OFD else fcntl.F_GETLK
# struct flock: l_type, l_whence, l_start, l_len, l_pid (and padding), in the platform's layout.
_FLOCK = "hhqqi4x" if struct.calcsize("hhqqi4x") == 32 else "hhqqi"
_SLOTS = 2**62  # offsets to choose from: two owners never meet by chance

# Classic POSIX locks belong to the process, and closing any descriptor of the file drops them all:
# where they are used, every journal of the process shares one descriptor, never closed.
_shared_lock = threading.Lock()
_shared: dict[str, int] = {}  # owners file -> the process's descriptor
_held_here: set[tuple[str, int]] = set()  # (owners file, slot) held by this process


def _flock(kind: int, slot: int) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, slot, 1, 0)


class OwnerLock:
    """One owner's lock on ``path`` (the journal's ``.owners`` file), taken on first use.

    Raises:
        OSError: the file cannot be opened or locked (the caller maps it to a JournalError).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._fd: int | None = None
        self._slot = 0
        self._pid = 0
        self._token = ""

    @property
    def token(self) -> str:
        """This owner's token (``slot@host:pid``; host and pid are for people, the slot decides)."""
        self._ensure()
        return self._token

    def is_alive(self, owner: str) -> bool:
        """Whether the owner named ``owner`` (a token of this kind) still holds its lock. A token
        this kind of lock did not write is not alive."""
        slot = _slot_of(owner)
        if slot is None:
            return False
        fd = self._ensure()
        if not _OFD and (str(self.path), slot) in _held_here:  # pragma: no cover - macOS
            return True  # this process's own (classic locks never conflict with their process)
        answer = fcntl.fcntl(fd, _GET, _flock(fcntl.F_WRLCK, slot))
        kind: int = struct.unpack(_FLOCK, answer)[0]
        return kind != fcntl.F_UNLCK

    def close(self) -> None:
        """Give the lock up (the journal is closed: it owns nothing any more)."""
        with self._guard:
            fd, self._fd = self._fd, None
            if fd is None or self._pid != os.getpid():
                return
            if _OFD:
                os.close(fd)
            else:  # pragma: no cover - macOS: unlock the byte, keep the shared descriptor
                fcntl.fcntl(fd, _SET, _flock(fcntl.F_UNLCK, self._slot))
                _held_here.discard((str(self.path), self._slot))

    def _ensure(self) -> int:
        """The descriptor, holding this owner's lock (taken now in a new process or after a fork)."""
        fd = self._fd
        if fd is not None and self._pid == os.getpid():
            return fd
        with self._guard:
            if self._fd is not None and self._pid == os.getpid():
                return self._fd
            if self._fd is not None and _OFD:  # a forked child: the parent's lock is the parent's
                os.close(self._fd)
            self._fd = self._open()
            self._pid = os.getpid()
            self._slot, self._token = self._take_slot(self._fd)
            return self._fd

    def _open(self) -> int:
        if _OFD:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with _shared_lock:  # pragma: no cover - macOS
            fd = _shared.get(str(self.path))
            if fd is None or os.getpid() != self._pid:
                fd = _shared[str(self.path)] = os.open(
                    self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
                )
            return fd

    def _take_slot(self, fd: int) -> tuple[int, str]:
        while True:
            slot = 1 + secrets.randbelow(_SLOTS - 1)
            try:
                fcntl.fcntl(fd, _SET, _flock(fcntl.F_WRLCK, slot))
            except OSError as exc:  # pragma: no cover - that byte is someone's: 1 chance in 2**62
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    continue
                raise
            if not _OFD:  # pragma: no cover - macOS
                _held_here.add((str(self.path), slot))
            return slot, f"{slot}@{socket.gethostname()}:{os.getpid()}"


def _slot_of(owner: str) -> int | None:
    slot, at, _ = owner.partition("@")
    if not at or not slot.isdigit():
        return None
    value = int(slot)
    return value if 0 < value < _SLOTS else None
