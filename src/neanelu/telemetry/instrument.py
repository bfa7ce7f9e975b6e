"""Instrumentation of the libraries every hop goes through, wired by one call per process, and
the HTTP side of the API: request ids, latency and status metrics, webhook outcomes. `/metrics` is
served on a port of its own (`serve_metrics`), never on the API's."""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neanelu.telemetry.logging import bind_request
from neanelu.telemetry.metrics import Metrics
from neanelu.telemetry.tracing import (
    PRESAMPLED,
    REQUEST_ID,
    TRACER_NAME,
    extract_context,
    sample_ratio,
    tracing_enabled,
)

WEBHOOK_PATH = "/api/webhooks"
READY_PATH = "/health/ready"
# Polled every few seconds by the orchestrator: a span each would drown real traces.
UNTRACED_URLS = "/health/live,/health/ready"
_MAX_REQUEST_ID = 128
_MAX_CHILDREN = 1024

# What each refusal of POST /api/webhooks means (see webhooks.routes).
WEBHOOK_REASONS = {
    200: "ok",
    400: "bad_request",
    401: "hmac",
    404: "unknown_shop",
    410: "uninstalled",
    413: "too_large",
}

_lock = threading.Lock()
_libraries_done = False


def instrument_libraries() -> None:
    """httpx, psycopg and redis spans for the whole process; a no-op when tracing is disabled or
    already wired."""
    global _libraries_done
    with _lock:
        if _libraries_done or not tracing_enabled():
            return
        HTTPXClientInstrumentor().instrument()
        # No SQL comments: they would defeat PostgreSQL's prepared statement reuse.
        PsycopgInstrumentor().instrument(enable_commenter=False)
        RedisInstrumentor().instrument()
        _libraries_done = True


def instrument_app(app: FastAPI, metrics: Metrics) -> None:
    """Server spans (outermost), request ids and HTTP metrics."""
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    if tracing_enabled():
        app.add_middleware(ServerSpanMiddleware)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if 0 < len(text) <= _MAX_REQUEST_ID and text.isprintable():
                return text
            break
    return uuid.uuid4().hex


class ServerSpanMiddleware:
    """One SERVER span per request, continuing the caller's `traceparent`.

    Written here rather than taken from the generic ASGI instrumentation because that one collects
    every request attribute and records its own metrics before sampling decides anything: on the
    webhook endpoint, where a request costs well under a millisecond, it cut throughput by a third
    at 10% sampling. Here an unsampled request costs one span start; attributes are filled only
    when the span records.
    """

    _untraced = frozenset(UNTRACED_URLS.split(","))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.tracer = trace.get_tracer(TRACER_NAME)
        self.random = random.Random()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self._untraced:
            await self.app(scope, receive, send)
            return
        parent = None
        for name, value in scope.get("headers", ()):
            if name == b"traceparent":
                parent = extract_context({"traceparent": bytes(value).decode("latin-1")})
                break
        method = scope.get("method", "GET")
        attributes = None
        if parent is None:
            # A new trace: draw it here. Most requests are not sampled, and for them a
            # non-recording span with fresh ids is all the context needs (jobs they enqueue
            # carry "not sampled" on), at a fraction of what the SDK's span start costs.
            if self.random.random() >= sample_ratio():
                unsampled = trace.NonRecordingSpan(
                    trace.SpanContext(
                        self.random.getrandbits(128) or 1,
                        self.random.getrandbits(64) or 1,
                        is_remote=False,
                        trace_flags=trace.TraceFlags(trace.TraceFlags.DEFAULT),
                    )
                )
                with trace.use_span(unsampled, end_on_exit=False):
                    await self.app(scope, receive, send)
                return
            attributes = {PRESAMPLED: True}
        with self.tracer.start_as_current_span(
            f"{method} {path}", context=parent, kind=trace.SpanKind.SERVER, attributes=attributes
        ) as span:
            if not span.is_recording():
                await self.app(scope, receive, send)
                return
            span.set_attribute("http.request.method", method)
            span.set_attribute("url.path", path)
            status = 500

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                span.set_attribute("http.response.status_code", status)
                route: Any = scope.get("route")
                if route is not None and getattr(route, "path", None):
                    span.set_attribute("http.route", route.path)
                    span.update_name(f"{method} {route.path}")
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)


class HttpMetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering): count, time, tag with a request id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled children by label values: `labels()` takes a lock and hashes its values on
        # every call, and a request would pay that three times. Routes, methods and statuses are
        # few, so this stays small.
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute(REQUEST_ID, request_id)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            with bind_request(request_id):
                await self.app(scope, receive, send_wrapper)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        method: str = scope.get("method", "GET")
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        key = (method, template, status)
        children = self._children.get(key)
        if children is None:
            if len(self._children) >= _MAX_CHILDREN:
                self._children.clear()  # odd methods from clients: a cache, not a registry
            children = self._children[key] = self._labelled(method, template, status)
        requests, duration, webhooks = children
        requests.inc()
        duration.observe(seconds)
        if webhooks is not None:
            webhooks.inc()
        elif template == READY_PATH:
            self.metrics.ready.set(1 if status == 200 else 0)

    def _labelled(self, method: str, template: str, status: int) -> tuple[Any, Any, Any]:
        m = self.metrics
        webhooks = None
        if template == WEBHOOK_PATH and method == "POST":
            reason = WEBHOOK_REASONS.get(status, "error" if status >= 500 else f"http_{status}")
            webhooks = m.webhooks.labels("accepted" if status == 200 else "rejected", reason)
        return (
            m.http_requests.labels(method, template, str(status)),
            m.http_duration.labels(method, template),
            webhooks,
        )
