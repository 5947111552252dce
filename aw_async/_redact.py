"""Keeping secrets out of messages, reprs, logs and exception chains.

Access tokens, refresh tokens, client secrets and API keys must never appear in a ``str``, a
``repr``, a log line or a chained exception (docs/api.md, "Secrets"). The code that builds those
texts never puts a secret in on purpose; this module is the net for texts it does not write itself:
a URL with ``apiKey`` in its query, an aiohttp exception that quotes that URL or carries the request
headers, a server's error page that echoes a header.

Two rules keep the net from tearing messages apart:

- a secret is also looked for in its percent-encoded forms, as it appears inside a URL;
- a short secret (under :data:`WHOLE_WORD_BELOW` characters) is redacted only where it stands as a
  word of its own, so that a two-letter token does not star those letters out of every other word.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urlsplit, urlunsplit

__all__ = [
    "REDACTED",
    "SECRET_QUERY_PARAMETERS",
    "RedactedCause",
    "excerpt",
    "redact",
    "redact_url",
    "scrub_exception",
    "stand_in",
]

REDACTED = "***"
#: Query parameters whose values are secrets (docs/api.md: the API key travels as ``apiKey``).
SECRET_QUERY_PARAMETERS = frozenset({"apikey", "access_token", "client_secret", "refresh_token"})
#: Secrets shorter than this are redacted only as whole words (not inside a longer alphanumeric run).
WHOLE_WORD_BELOW = 8


@functools.lru_cache(maxsize=256)
def _pattern(secret: str) -> re.Pattern[str]:
    forms = sorted({secret, quote(secret, safe=""), quote_plus(secret)}, key=len, reverse=True)
    alternatives = "|".join(re.escape(form) for form in forms)
    if len(secret) < WHOLE_WORD_BELOW:
        return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")
    return re.compile(alternatives)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every occurrence of every (non-empty) secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = _pattern(secret).sub(REDACTED, text)
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


class RedactedCause(Exception):
    """Stands in for a third-party exception at the end of one of ours: its type and its redacted
    message, without the objects it carried.

    aiohttp's ``ClientResponseError`` keeps ``request_info``, whose URL holds the API key and whose
    headers hold the bearer token; no amount of scrubbing strings reaches those, so the original
    never becomes part of our chain.
    """

    def __init__(self, message: str, *, original_type: str) -> None:
        super().__init__(message)
        self.original_type = original_type


def stand_in(exc: BaseException, secrets: Iterable[str | None]) -> RedactedCause:
    """A :class:`RedactedCause` for ``exc`` (its traceback kept: frames show code, not values)."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    text = str(exc)
    underneath = exc.__cause__
    for _ in range(4):  # aiohttp wraps OSErrors: say what lies underneath too
        if underneath is None:
            break
        text += f" (from {type(underneath).__name__}: {underneath})"
        underneath = underneath.__cause__
    return RedactedCause(redact(redact_url_in(text), secrets), original_type=kind)


_URL = re.compile(r"https?://[^\s'\"<>]+")


def redact_url_in(text: str) -> str:
    """``text`` with the secret query parameters of every URL in it redacted."""
    return _URL.sub(lambda match: redact_url(match.group()), text) if "://" in text else text


_MAX_CHAIN = 16


def scrub_exception(exc: BaseException | None, secrets: Iterable[str | None]) -> None:
    """Redact secrets from the string arguments of ``exc`` and of every exception it leads to:
    its cause or context, and the members of an exception group (which tracebacks print too)."""
    secrets = [s for s in secrets if s]
    if not secrets:
        return
    seen: set[int] = set()
    waiting: list[BaseException | None] = [exc]
    while waiting and len(seen) < _MAX_CHAIN * 4:
        current = waiting.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(redact(a, secrets) if isinstance(a, str) else a for a in current.args)
        for name in ("strerror", "filename", "msg", "message"):
            value = getattr(current, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError, TypeError):  # read-only in a C exception
                    setattr(current, name, redact(value, secrets))
        waiting.append(current.__cause__ or current.__context__)
        if isinstance(current, BaseExceptionGroup):
            waiting.extend(current.exceptions)


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
