"""Operation spans: one OpenTelemetry span per call of the transport, its tries beneath it.

Only when the application has set a tracer provider: ``opentelemetry-api`` is never imported here
(an application that traces has imported it already), and a process that has not imported it, or
has set no provider, pays one dictionary lookup per request. Under the operation's span, each try's
HTTP span (from the application's aiohttp trace configs) is a child of the operation, so retries are
siblings, never children of the try before. No attribute holds a secret: the URL is redacted as
error messages are, and no header is recorded.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._protocol import Request
from ._version import __version__

if TYPE_CHECKING:
    from opentelemetry.trace import Span, Tracer

__all__ = ["answered", "operation_span", "operation_tracer"]

_cached: tuple[object, Any] | None = None  # (the provider, its tracer)


def operation_tracer() -> Tracer | None:
    """The tracer for operation spans, or None when no tracer provider is set."""
    global _cached
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return None  # the hot path of an application that does not trace
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer("aw_async", __version__))
    tracer: Tracer = _cached[1]
    return tracer


@contextmanager
def operation_span(tracer: Tracer, request: Request) -> Iterator[Span]:
    """A span named after the operation (the URL's last path segment), current while it runs."""
    operation = urlsplit(request.url).path.rstrip("/").rsplit("/", 1)[-1] or request.method
    attributes = {"http.request.method": request.method, "url.full": request.display_url}
    with tracer.start_as_current_span(f"aw_async {operation}", attributes=attributes) as span:
        yield span


def answered(span: Span, status: int) -> None:
    """Record the status of the answer the operation ended with."""
    span.set_attribute("http.response.status_code", status)
