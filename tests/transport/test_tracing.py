"""Tracing that tells the truth: with OpenTelemetry's aiohttp instrumentation, each try is one span,
retries are siblings under the operation, ``trace_configs=`` reaches a session the client creates,
and no span holds a secret.

The README's web setup: the application instruments aiohttp, creates its session, and lends it to
the client. Spans are counted and read from an in-memory exporter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor, create_trace_config
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from aw_async import AdultWorkClient
from aw_async._exchange import _redacted_exception
from aw_async.sandbox import SandboxServer
from aw_async.testing import VirtualClock

TOKEN = "trace-token-6c1f9e"
API_KEY = "trace-api-key-0b7d44"
USER = 3


class Switch(Sampler):
    """Samples while on: the global provider is set once per process, and stays off between tests."""

    on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        return SamplingResult(Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP, attributes)

    def get_description(self) -> str:
        return "Switch"


SWITCH = Switch()
EXPORTER = InMemorySpanExporter()
PROVIDER = TracerProvider(sampler=SWITCH)
PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Spans of this test only, from a provider the application set (operation spans off)."""
    EXPORTER.clear()
    SWITCH.on = True
    yield EXPORTER
    SWITCH.on = False
    EXPORTER.clear()


@pytest.fixture
def global_provider(spans: InMemorySpanExporter) -> None:
    """The provider set as the process's own, as an application that traces does: operation spans
    appear. Set once for the process; the switch keeps it from recording outside these tests."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(PROVIDER)
    assert trace.get_tracer_provider() is PROVIDER


@pytest.fixture
def instrumented(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """aiohttp instrumented for the whole process, every request header captured on the spans."""
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_CLIENT_REQUEST", ".*")
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=PROVIDER)
    yield
    instrumentor.uninstrument()


def three_503s(server: SandboxServer) -> None:
    server.faults.add("server_error", status=503, retry_after=None, times=3)  # 4 tries in all


pytestmark = pytest.mark.sandbox(token=TOKEN, user=USER, balance=4, seed=three_503s)


def http_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.CLIENT]


def every_text(exporter: InMemorySpanExporter) -> list[str]:
    texts: list[str] = []
    for span in exporter.get_finished_spans():
        texts += [span.name, str(span.status.description)]
        texts += [f"{key}={value}" for key, value in (span.attributes or {}).items()]
        for event in span.events:
            texts += [f"{key}={value}" for key, value in (event.attributes or {}).items()]
    return texts


async def balance_through(aw: AdultWorkClient) -> Decimal:
    app_tracer = PROVIDER.get_tracer("the-application")
    with app_tracer.start_as_current_span("handle a web request"):
        return await aw.credit_history.get_current_credit_balance()


@pytest.mark.usefixtures("instrumented")
async def test_a_borrowed_instrumented_session_traces_each_try_once_under_the_same_parent(
    sandbox: SandboxServer, spans: InMemorySpanExporter
) -> None:
    async with aiohttp.ClientSession() as session:  # the application's: instrumented
        aw = AdultWorkClient(
            TOKEN, base_url=sandbox.url, session=session, max_retries=3, clock=VirtualClock()
        )
        async with aw:
            assert await balance_through(aw) == Decimal(4)
    tries = http_spans(spans)
    assert len(tries) == 4  # not 8
    (web_request,) = [span for span in spans.get_finished_spans() if span.name == "handle a web request"]
    assert {span.parent.span_id for span in tries if span.parent} == {web_request.context.span_id}
    assert [span.attributes["http.status_code"] for span in tries if span.attributes] == [503, 503, 503, 200]


@pytest.mark.usefixtures("instrumented", "global_provider")
async def test_with_operation_spans_the_retries_are_children_of_the_operation(
    sandbox: SandboxServer, spans: InMemorySpanExporter
) -> None:
    async with aiohttp.ClientSession() as session:
        aw = AdultWorkClient(
            TOKEN, base_url=sandbox.url, session=session, max_retries=3, clock=VirtualClock()
        )
        async with aw:
            await balance_through(aw)
    finished = spans.get_finished_spans()
    (operation,) = [span for span in finished if span.name == "aw_async GetCurrentCreditBalance"]
    (web_request,) = [span for span in finished if span.name == "handle a web request"]
    tries = http_spans(spans)
    assert len(tries) == 4
    assert all(span.parent and span.parent.span_id == operation.context.span_id for span in tries)
    assert operation.parent
    assert operation.parent.span_id == web_request.context.span_id
    assert operation.attributes
    assert operation.attributes["http.response.status_code"] == 200


async def test_trace_configs_reach_a_session_the_client_creates(
    sandbox: SandboxServer, spans: InMemorySpanExporter
) -> None:
    config = create_trace_config(tracer_provider=PROVIDER)
    aw = AdultWorkClient(
        TOKEN, base_url=sandbox.url, max_retries=3, clock=VirtualClock(), trace_configs=[config]
    )
    async with aw:
        await balance_through(aw)
    assert len(http_spans(spans)) == 4


@pytest.mark.usefixtures("instrumented")
async def test_an_instrumented_process_traces_a_session_the_client_creates_once_a_try(
    sandbox: SandboxServer, spans: InMemorySpanExporter
) -> None:
    async with AdultWorkClient(TOKEN, base_url=sandbox.url, max_retries=3, clock=VirtualClock()) as aw:
        await balance_through(aw)
    assert len(http_spans(spans)) == 4


@pytest.mark.usefixtures("instrumented", "global_provider")
async def test_no_span_attribute_holds_a_secret(sandbox: SandboxServer, spans: InMemorySpanExporter) -> None:
    async with aiohttp.ClientSession() as session:
        aw = AdultWorkClient(
            TOKEN, base_url=sandbox.url, session=session, api_key=API_KEY, max_retries=3, clock=VirtualClock()
        )
        async with aw:
            await balance_through(aw)
    texts = every_text(spans)
    urls = [text for text in texts if text.startswith(("http.url=", "url.full="))]
    assert urls
    assert all("apiKey=***" in url for url in urls)
    assert any(text.startswith("http.request.header.authorization=") for text in texts)  # captured...
    for text in texts:
        assert TOKEN not in text  # ...but not the token
        assert API_KEY not in text


async def test_the_trace_context_still_reaches_the_server(spans: InMemorySpanExporter) -> None:
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent"))
        return web.Response(body=b"1", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        config = create_trace_config(tracer_provider=PROVIDER)
        async with AdultWorkClient(TOKEN, base_url=url, trace_configs=[config]) as aw:
            await balance_through(aw)
    finally:
        await runner.cleanup()
    (traceparent,) = seen
    (span,) = http_spans(spans)
    assert traceparent is not None
    assert f"{span.context.trace_id:032x}" in traceparent


def test_an_exception_whose_text_quotes_a_secret_is_shown_to_tracers_redacted_and_of_its_type() -> None:
    exc = aiohttp.ConnectionTimeoutError(f"Connection timeout to host https://h/x?apiKey={API_KEY}")
    shown = _redacted_exception(exc, (API_KEY,))
    assert type(shown).__qualname__ == "ConnectionTimeoutError"
    assert API_KEY not in str(shown)
    assert "apiKey=***" in str(shown)
    harmless = aiohttp.ServerDisconnectedError()
    assert _redacted_exception(harmless, (API_KEY,)) is harmless
