"""``PostgresJournal``: the journal in a PostgreSQL database (being built on its own branch)."""

from __future__ import annotations

from typing import Any

from ..errors import JournalError

__all__ = ["PostgresJournal"]


class PostgresJournal:
    """Placeholder until the store lands."""

    def __new__(cls, dsn: str, *, schema: str = "aw_async") -> Any:
        raise JournalError("PostgresJournal is not available in this build")
