"""What ``PostgresJournal`` needs before it connects: the driver (an optional extra) and a DSN it
can show without its password."""

from __future__ import annotations

import importlib
import re
import urllib.parse
from types import ModuleType

from ..errors import JournalError

__all__ = ["load_asyncpg", "redacted"]

_EXTRA = "PostgresJournal needs asyncpg: pip install 'aw-async[postgres]'"


def load_asyncpg() -> ModuleType:
    """The asyncpg module, imported on first use (importing aw_async.journal never needs it).

    Raises:
        JournalError: it is not installed; the message names the extra that brings it.
    """
    try:
        return importlib.import_module("asyncpg")
    except ImportError as exc:
        raise JournalError(_EXTRA) from exc


def redacted(dsn: str) -> tuple[str, list[str]]:
    """``dsn`` without its password, for messages and reprs; and the secrets to scrub from the
    driver's messages (longest first)."""
    secrets: list[str] = []
    if "://" not in dsn:  # not a URL (asyncpg will refuse it): show none of it
        secrets += re.findall(r"password\s*=\s*(\S+)", dsn)
        return "<a DSN that is not a postgresql:// URL>", [s for s in secrets if s]
    scheme, _, rest = dsn.partition("://")
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, _, hosts = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if colon and password:
            secrets += [password, urllib.parse.unquote(password)]
        netloc = f"{user}@{hosts}"
    path, question, query = tail.partition("?")
    kept = []
    for pair in query.split("&") if question else []:
        name, _, value = pair.partition("=")
        if "password" in urllib.parse.unquote(name).lower():
            secrets += [value, urllib.parse.unquote(value)]
        else:
            kept.append(pair)
    shown = f"{scheme}://{netloc}{slash}{path}" + ("?" + "&".join(kept) if kept else "")
    return shown, sorted({s for s in secrets if s}, key=len, reverse=True)
