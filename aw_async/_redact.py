"""Keeping secrets out of messages, reprs, logs and exception chains.

Access tokens, refresh tokens, client secrets and API keys must never appear in a ``str``, a
``repr``, a log line or a chained exception (PUBLIC_API.md, "Errors"). The code that builds those
texts never puts a secret in on purpose; this module is the net for texts it does not write itself:
a URL with ``apiKey`` in its query, an aiohttp exception that quotes that URL, a server's error
page that echoes a header.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["REDACTED", "SECRET_QUERY_PARAMETERS", "excerpt", "redact", "redact_url", "scrub_exception"]

REDACTED = "***"
#: Query parameters whose values are secrets (API.md: the API key travels as ``apiKey``).
SECRET_QUERY_PARAMETERS = frozenset({"apikey", "access_token", "client_secret", "refresh_token"})


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_url(url: str) -> str:
    """The URL with the values of secret query parameters replaced by ``***``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = [
        (name, REDACTED if name.lower() in SECRET_QUERY_PARAMETERS else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*")))


_MAX_CHAIN = 16


def scrub_exception(exc: BaseException | None, secrets: Iterable[str | None]) -> None:
    """Redact secrets from the string arguments of ``exc`` and of the exceptions it chains to.

    Used on a third-party exception (aiohttp's) before it becomes the ``__cause__`` of one of ours:
    ``ConnectionTimeoutError`` quotes the request URL, query string and all.
    """
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < _MAX_CHAIN:
        seen.add(id(exc))
        exc.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in exc.args)
        for name in ("strerror", "filename", "msg", "message"):
            value = getattr(exc, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError, TypeError):  # read-only in a C exception
                    setattr(exc, name, redact(value, secrets))
        exc = exc.__cause__ or exc.__context__


_WHITESPACE = re.compile(r"\s+")
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")


def excerpt(body: bytes, secrets: Iterable[str | None] = (), limit: int = 200) -> str:
    """A short, printable, secret-free excerpt of a body that is not JSON or XML (an HTML error
    page from a proxy, plain text, nothing): an HTML page's title, else its text, else the start."""
    text = body[: limit * 20].decode("utf-8", errors="replace")
    title = _TITLE.search(text)
    if title is not None:
        text = title.group(1)
    elif "<" in text and ">" in text:
        text = _TAG.sub(" ", text)
    text = _WHITESPACE.sub(" ", "".join(c if c.isprintable() else " " for c in text)).strip()
    text = redact(text, secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"
