"""The exceptions aw_async raises.

::

    AdultWorkError
    ├── DecodeError        a body that is malformed, hostile or of the wrong shape or types
    └── EncodeError        a value the wire format cannot carry

Every error aw_async raises is an :class:`AdultWorkError`, so one ``except`` catches them all.
"""

from __future__ import annotations

__all__ = ["AdultWorkError", "DecodeError", "EncodeError"]


class AdultWorkError(Exception):
    """The base of every error aw_async raises."""


class DecodeError(AdultWorkError, ValueError):
    """A response body could not be decoded into the requested type.

    Attributes:
        path: the wire path of the offending field (``Candidate.UserID``), when one is known.
        line, column: where a syntax error was found, when the parser said (1-based).
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.column = column


class EncodeError(AdultWorkError, ValueError):
    """A value cannot be written in the wire format (an XML-forbidden character, a NaN decimal)."""
