"""Answers for :class:`aw_async.testing.MockTransport` handlers: bodies encoded by the library's own
codecs, as the server would send them, and handlers that play a script."""

from __future__ import annotations

from collections.abc import Callable

from aw_async.codecs import JsonCodec, XmlCodec
from aw_async.models import ErrorBody
from aw_async.testing import Request, Response

CODECS = {"json": JsonCodec(), "xml": XmlCodec()}
MEDIA = {"json": "application/json; charset=utf-8", "xml": "application/xml; charset=utf-8"}


def answer(value: object, *, status: int = 200, format: str = "json", **headers: str) -> Response:
    """A response carrying ``value`` encoded as the server would in ``format``."""
    return Response(status, {"Content-Type": MEDIA[format], **headers}, CODECS[format].encode(value))


def error(
    status: int, message: str = "An error has occurred.", *, format: str = "json", **headers: str
) -> Response:
    """Web API's error body (``HttpError``) with ``status``."""
    return answer(ErrorBody(message=message), status=status, format=format, **headers)


def raw(body: bytes, *, status: int = 200, content_type: str = "application/json") -> Response:
    """A response with exactly this body."""
    return Response(status, {"Content-Type": content_type}, body)


def format_asked(request: Request) -> str:
    """The format a request's ``Accept`` asks for."""
    return "xml" if "xml" in request.headers.get("Accept", "") else "json"


def scripted(*replies: Response | Exception) -> Callable[[Request], Response]:
    """A handler giving ``replies`` in turn (an exception is raised), then repeating the last."""
    remaining = list(replies)

    def handler(request: Request) -> Response:
        reply = remaining.pop(0) if len(remaining) > 1 else remaining[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handler
