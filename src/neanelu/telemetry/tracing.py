"""OpenTelemetry traces: one tracer provider per process, W3C context carried in job headers.

`setup_tracing` is called by each entrypoint (API process, worker, CLI command) with the settings
it built; calling it again is harmless (it returns the same provider and attaches any extra
exporter a test brings). Nothing happens at import time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes, AttributeValue

if TYPE_CHECKING:
    from neanelu.config import Settings

log = logging.getLogger(__name__)

TRACER_NAME = "neanelu"
# Attribute names shared by every span that concerns a shop or a job.
SHOP_ID = "neanelu.shop_id"
JOB_ID = "neanelu.job_id"
REQUEST_ID = "neanelu.request_id"

EXPORT_TIMEOUT_S = 5.0
# A collector that is down is reported this often at most, not on every batch.
EXPORT_FAILURE_REPORT_S = 300.0
# The exporter's own loggers would print a warning per failed batch; our wrapper reports instead.
_NOISY_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal")

_propagator = TraceContextTextMapPropagator()
_NO_OP_TRACER = trace.NoOpTracer()
# Set on a root span whose sampling the caller already decided (see ServerSpanMiddleware).
PRESAMPLED = "neanelu.presampled"
_lock = threading.Lock()
_state: _TracingState | None = None


class _Sampler(Sampler):
    """Parent-based ratio sampling, retunable in place, that never starts a trace from a bare
    client call: a Redis poll, a lease renewal or an outbox scan outside any request or job would
    otherwise fill the store with one-span traces."""

    def __init__(self, ratio: float) -> None:
        self._delegate = ParentBased(TraceIdRatioBased(ratio))
        self.ratio = ratio

    def retune(self, ratio: float) -> None:
        self._delegate = ParentBased(TraceIdRatioBased(ratio))
        self.ratio = ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        if attributes and attributes.get(PRESAMPLED):
            # The server middleware already drew this root at the configured ratio.
            return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes)
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"NeaneluSampler{{ParentBased{{TraceIdRatioBased{{{self.ratio}}}}}}}"


class QuietExporter(SpanExporter):
    """Wraps the OTLP exporter: a collector that is down or slow costs dropped spans, never an
    exception or a log line per batch; one warning names the problem every few minutes."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self._inner = inner
        self._endpoint = endpoint
        self._last_report = 0.0
        self.failures = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self._inner.export(spans)
        except Exception as exc:
            self._report(type(exc).__name__)
            return SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self._report("export refused or unreachable")
        return result

    def _report(self, why: str) -> None:
        self.failures += 1
        now = time.monotonic()
        if self._last_report == 0.0 or now - self._last_report >= EXPORT_FAILURE_REPORT_S:
            self._last_report = now
            log.warning(
                "trace export to %s failing (%s); spans are dropped until it recovers",
                self._endpoint,
                why,
            )

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        except Exception:
            log.debug("trace exporter shutdown failed", exc_info=True)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self._inner.force_flush(timeout_millis)
        except Exception:
            return False


class _TracingState:
    def __init__(self, provider: TracerProvider, sampler: _Sampler, enabled: bool) -> None:
        self.provider = provider
        self.sampler = sampler
        self.enabled = enabled
        self.exporters: list[SpanExporter] = []


def _otlp_exporter(endpoint: str) -> SpanExporter:
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    # Imported here: only a process that exports loads the OTLP client (protobuf, requests).
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return QuietExporter(OTLPSpanExporter(endpoint=url, timeout=EXPORT_TIMEOUT_S), url)


def setup_tracing(
    settings: Settings, service_name: str, *, exporter: SpanExporter | None = None
) -> TracerProvider:
    """The process's tracer provider, built on first call (later calls return it unchanged).

    OTLP export only when OTEL_EXPORTER_OTLP_ENDPOINT is set; `exporter` (tests) is attached with a
    synchronous processor so spans are visible as soon as they end. With OTEL_SDK_DISABLED the
    provider is built but not installed: instrumented libraries then create no spans at all.
    """
    global _state
    with _lock:
        if _state is None:
            sampler = _Sampler(settings.otel_sample_ratio)
            provider = TracerProvider(
                sampler=sampler,
                resource=Resource.create(
                    {"service.name": service_name, "service.namespace": "neanelu"}
                ),
            )
            enabled = not settings.otel_sdk_disabled
            _state = _TracingState(provider, sampler, enabled)
            if settings.otel_exporter_otlp_endpoint:
                provider.add_span_processor(
                    BatchSpanProcessor(_otlp_exporter(settings.otel_exporter_otlp_endpoint))
                )
            if enabled:
                trace.set_tracer_provider(provider)
        if exporter is not None and exporter not in _state.exporters:
            _state.exporters.append(exporter)
            _state.provider.add_span_processor(SimpleSpanProcessor(exporter))
        return _state.provider


def set_sample_ratio(ratio: float) -> None:
    """Change the ratio of new root traces kept (tests and benchmarks; the settings set it once)."""
    if _state is not None:
        _state.sampler.retune(ratio)


def sample_ratio() -> float:
    """The ratio new root traces are sampled at (0 when tracing is off)."""
    return _state.sampler.ratio if _state is not None and _state.enabled else 0.0


def tracing_enabled() -> bool:
    """True once `setup_tracing` installed a provider in this process."""
    return _state is not None and _state.enabled


def shutdown_tracing() -> None:
    """Flush what is queued (bounded by the exporter's timeout); for orderly process exit."""
    if _state is not None:
        _state.provider.force_flush(int(EXPORT_TIMEOUT_S * 1000))


def inject_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`); empty outside a
    span. Stored in a job's headers at enqueue so the worker continues the same trace."""
    carrier: dict[str, str] = dict(extra or {})
    _propagator.inject(carrier)
    return carrier


def extract_context(headers: Mapping[str, str]) -> Context:
    """The context a job's headers carry (an empty context when they carry none)."""
    return _propagator.extract(dict(headers))


@contextmanager
def span(
    name: str,
    attributes: Mapping[str, AttributeValue | None] | None = None,
    *,
    kind: SpanKind = SpanKind.INTERNAL,
    context: Context | None = None,
) -> Iterator[trace.Span]:
    """A span around a block; `None` attributes are left out. Exceptions are recorded and the
    span marked as an error, then re-raised."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        # No provider installed (tracing off): the API would hand the call to its no-op tracer,
        # through a new proxy tracer and the attributes copied for nobody. Asking the no-op
        # tracer directly gives the same non-recording span (its parent's ids, for the logs and
        # for jobs enqueued inside), and making it current needs only the attach that `use_span`
        # does (ending, recording or marking a non-recording span does nothing): 19 -> 5 us, paid
        # once per job by the worker.
        current = _NO_OP_TRACER.start_span(name, context=context, kind=kind)
        token = otel_context.attach(trace.set_span_in_context(current))
        try:
            yield current
        finally:
            otel_context.detach(token)
        return
    tracer = trace.get_tracer(TRACER_NAME)
    present = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(
        name, context=context, kind=kind, attributes=present
    ) as current:
        yield current


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) in hex of the current span, sampled or not; None outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def current_context() -> Context:
    """The active trace context, for work another task does later on this one's behalf."""
    return otel_context.get_current()


@contextmanager
def within(ctx: Context) -> Iterator[None]:
    """Run the block in `ctx` (one from `current_context`): its spans and the jobs it enqueues
    join that trace."""
    token = otel_context.attach(ctx)
    try:
        yield
    finally:
        otel_context.detach(token)
