"""Which journal a client uses, and who closes it.

``journal=None`` (the default) is durable: a :class:`~aw_async.journal.SqliteJournal` at
:func:`default_journal_path`. A path, a ``postgresql://`` URL and the default are opened once per
process and shared by every client that names them (so their single-flight is shared too), and
closed when the last of those clients is closed. ``"memory"`` is a
:class:`~aw_async.journal.MemoryJournal` of the client's own; a :class:`Journal` object is the
caller's to close.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import attrs

from ..errors import JournalError
from ._memory import MemoryJournal
from ._postgres import PostgresJournal
from ._sqlite import SqliteJournal
from ._store import Journal

__all__ = ["default_journal_path", "is_database_url", "open_journal"]

#: The environment variable that names the default journal: a path, or a ``postgresql://`` URL.
ENVIRONMENT = "AW_ASYNC_JOURNAL"


def is_database_url(text: str) -> bool:
    """Whether ``text`` names a PostgreSQL database rather than a file."""
    return text.startswith(("postgresql://", "postgres://"))


def default_journal_path() -> Path | str:
    """Where ``journal=None`` keeps the journal: ``$AW_ASYNC_JOURNAL`` if set (a path, or a
    ``postgresql://`` URL, given back as it is), else ``$XDG_STATE_HOME/aw-async/journal.sqlite3``,
    else ``~/.local/state/aw-async/journal.sqlite3``."""
    configured = os.environ.get(ENVIRONMENT)
    if configured:
        return configured if is_database_url(configured) else Path(configured).expanduser()
    state = os.environ.get("XDG_STATE_HOME")
    base = Path(state).expanduser() if state else Path.home() / ".local" / "state"
    return base / "aw-async" / "journal.sqlite3"


@attrs.define
class _Shared:
    journal: Journal
    users: int = 0


_lock = threading.Lock()
_shared: dict[str, _Shared] = {}

Release = Callable[[], Awaitable[None]]


def open_journal(spec: Journal | str | os.PathLike[str] | None) -> tuple[Journal, Release]:
    """The journal ``spec`` names, and what a client calls when it is closed (commit what it queued;
    close the journal if it was the last client sharing it).

    Raises:
        TypeError: ``spec`` is none of the accepted kinds.
    """
    if isinstance(spec, Journal):
        return spec, spec.flush
    if spec == "memory":
        journal = MemoryJournal()
        return journal, journal.aclose
    if spec is None:
        spec = default_journal_path()
    if not isinstance(spec, str | os.PathLike):
        raise TypeError(f"journal must be a Journal, a path, a postgresql:// URL or 'memory', got {spec!r}")
    text = os.fspath(spec)
    name = text if is_database_url(text) else str(_absolute(Path(text)))
    with _lock:
        shared = _shared.get(name)
        if shared is None:
            made: Journal = PostgresJournal(text) if is_database_url(text) else SqliteJournal(name)
            shared = _shared[name] = _Shared(made)
        shared.users += 1

    async def release() -> None:
        with _lock:
            shared.users -= 1
            last = shared.users == 0
            if last and _shared.get(name) is shared:
                del _shared[name]
        if last:
            await shared.journal.aclose()
        else:
            await shared.journal.flush()

    return shared.journal, release


def _absolute(path: Path) -> Path:
    try:
        return path.expanduser().absolute()
    except RuntimeError as exc:  # no home folder to expand ~ to
        raise JournalError(f"the journal {str(path)!r}: {exc}") from exc
