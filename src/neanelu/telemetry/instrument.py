"""Instrumentation of the libraries every hop goes through, wired by one call per process, and
the HTTP side of the API: request ids, latency and status metrics, webhook outcomes, `/metrics`."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from neanelu.telemetry.logging import bind_request
from neanelu.telemetry.metrics import CONTENT_TYPE, Metrics
from neanelu.telemetry.tracing import REQUEST_ID, tracing_enabled

WEBHOOK_PATH = "/api/webhooks"
READY_PATH = "/health/ready"
# Polled every few seconds by Prometheus and the orchestrator: a span each would drown real traces.
UNTRACED_URLS = "/metrics,/health/live,/health/ready"
REQUEST_ID_HEADER = "x-request-id"
_MAX_REQUEST_ID = 128

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
    """Server spans (outermost), request ids and HTTP metrics, and `GET /metrics`."""
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    if tracing_enabled():
        # No span per ASGI message: two extra spans per request for nothing a reader needs.
        FastAPIInstrumentor.instrument_app(
            app, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"]
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = bytes(value).decode("latin-1")
            if 0 < len(text) <= _MAX_REQUEST_ID and text.isprintable():
                return text
            break
    return uuid.uuid4().hex


class HttpMetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering): count, time, tag with a request id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

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
        m = self.metrics
        m.http_requests.labels(method, template, str(status)).inc()
        m.http_duration.labels(method, template).observe(seconds)
        if template == WEBHOOK_PATH and method == "POST":
            reason = WEBHOOK_REASONS.get(status, "error" if status >= 500 else f"http_{status}")
            m.webhooks.labels("accepted" if status == 200 else "rejected", reason).inc()
        elif template == READY_PATH:
            m.ready.set(1 if status == 200 else 0)
