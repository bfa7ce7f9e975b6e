"""One webhook, one trace: the API request, the outbox, the worker's job, the Shopify call and
PostgreSQL, all under the same trace id; the worker's log lines carry it; `/metrics` counts it."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client.parser import text_string_to_metric_families

from neanelu.config import load_settings
from neanelu.queue.observe import QueueSampler
from neanelu.shopify.hmac import sign_webhook
from neanelu.shops import tasks as shop_tasks
from neanelu.telemetry import (
    Metrics,
    install_metrics,
    instrument_libraries,
    serve_metrics,
    setup_logging,
    setup_tracing,
)
from neanelu.telemetry.tracing import set_sample_ratio
from tests.service.e2e_stack import (  # the `stack` fixture (tests/conftest.py) runs these
    CONTROL,
    SHOP,
    Stack,
    db_product,
    eventually,
    install,
    number,
)
from tests.service.support import SECRET, product_payload


@pytest.fixture
def traced() -> Iterator[tuple[InMemorySpanExporter, Metrics, io.StringIO]]:
    """Every trace kept, into memory; fresh metrics; JSON logs into a buffer. Before `stack`, so
    the app and worker it builds use them."""
    settings = load_settings(LOG_LEVEL="DEBUG")
    exporter = InMemorySpanExporter()
    setup_tracing(settings, "neanelu-test", exporter=exporter)
    # Before the stack opens its pool: psycopg connections made earlier would carry no spans.
    instrument_libraries()
    set_sample_ratio(1.0)
    metrics = Metrics()
    previous = install_metrics(metrics)
    logs = io.StringIO()
    yield exporter, metrics, logs
    setup_logging(load_settings(), json=True)
    install_metrics(previous)
    set_sample_ratio(0.1)
    exporter.shutdown()


def _by_trace(exporter: InMemorySpanExporter, trace_id: int) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.context.trace_id == trace_id]


def _ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[ReadableSpan]:
    by_id = {s.context.span_id: s for s in spans}
    chain = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        chain.append(span)
    return chain


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_one_webhook_one_trace_and_metrics(
    traced: tuple[InMemorySpanExporter, Metrics, io.StringIO], stack: Stack
) -> None:
    exporter, metrics, logs = traced
    # The stack's create_app set up logging to stderr; send it to the buffer again.
    setup_logging(load_settings(LOG_LEVEL="DEBUG"), json=True, stream=logs)
    rt = stack.runtime
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = await install(stack, browser)

    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return len(subs) >= len(shop_tasks.WEBHOOK_TOPICS)

    await eventually(subscribed, "webhook subscriptions")
    created = (await stack.control.post(f"{CONTROL}/products", json={"title": "Traced"})).json()
    pid = number(created["product"]["id"])

    async def arrived() -> bool:
        return await db_product(rt, shop_id, pid) is not None

    await eventually(arrived, "the emulator's products/create")
    exporter.clear()

    # Triggered two minutes ago: the worker fetches the product's current state from Shopify.
    stamp = datetime.now(UTC) - timedelta(minutes=2)
    body = json.dumps(product_payload(pid, "Traced (late)", stamp)).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Hmac-Sha256": sign_webhook(body, SECRET),
        "X-Shopify-Shop-Domain": SHOP,
        "X-Shopify-Webhook-Id": f"traced-{time.time_ns()}",
        "X-Shopify-Triggered-At": stamp.isoformat(),
        "X-Request-Id": "traced-webhook-1",
    }
    async with httpx.AsyncClient(base_url=stack.app_url, timeout=10) as api:
        # Shopify sends no trace context: the request must start the trace, as in production.
        HTTPXClientInstrumentor.uninstrument_client(api)
        accepted = await api.post("/api/webhooks", content=body, headers=headers)
        assert accepted.status_code == 200
        assert accepted.headers["x-request-id"] == "traced-webhook-1"
        for _ in range(2):
            bad = await api.post(
                "/api/webhooks", content=body, headers={**headers, "X-Shopify-Hmac-Sha256": "x"}
            )
            assert bad.status_code == 401

        def servers() -> list[ReadableSpan]:
            return [
                s
                for s in exporter.get_finished_spans()
                if s.kind is SpanKind.SERVER
                and (s.attributes or {}).get("neanelu.request_id") == "traced-webhook-1"
            ]

        async def served() -> bool:
            return bool(servers())

        await eventually(served, "the request's server span", timeout=5)
        server = servers()[0]
        trace_id = server.context.trace_id

        async def job_done() -> bool:
            return any(s.name == "job webhooks.process" for s in _by_trace(exporter, trace_id))

        await eventually(job_done, "the worker's span in the webhook's trace")
        spans = _by_trace(exporter, trace_id)
        job = next(s for s in spans if s.name == "job webhooks.process")
        assert job.kind is SpanKind.CONSUMER
        assert server in _ancestors(job, spans)
        assert (job.attributes or {})["neanelu.shop_id"] == shop_id
        below_job = [s for s in spans if job in _ancestors(s, spans)]
        shopify = [
            s
            for s in below_job
            if s.kind is SpanKind.CLIENT
            and "graphql.json"
            in str((s.attributes or {}).get("url.full", (s.attributes or {}).get("http.url")))
        ]
        assert shopify, [
            (s.name, dict(s.attributes or {}))
            for s in below_job
            if s.kind is SpanKind.CLIENT and s.name.startswith(("POST", "GET"))
        ]
        assert any((s.attributes or {}).get("db.system") == "postgresql" for s in below_job)
        # The API side wrote the inbox and outbox in PostgreSQL inside the same trace.
        assert any(
            (s.attributes or {}).get("db.system") == "postgresql" and server in _ancestors(s, spans)
            for s in spans
        )
        # The worker's log lines for the job carry the trace id.
        worker_lines = [
            json.loads(line)
            for line in logs.getvalue().splitlines()
            if '"job_id"' in line and "webhooks.process" in line
        ]
        assert worker_lines
        assert format(trace_id, "032x") in {line.get("trace_id") for line in worker_lines}
        assert SECRET not in logs.getvalue()

        await QueueSampler(rt.queues).sample_once()
        # /metrics is not on the API port: Prometheus scrapes the metrics port.
        assert (await api.get("/metrics")).status_code == 404
    metrics_server = serve_metrics(metrics, 0, "127.0.0.1")
    try:
        async with httpx.AsyncClient(timeout=10) as prometheus:
            scraped = await prometheus.get(f"http://127.0.0.1:{metrics_server.port}/metrics")
    finally:
        metrics_server.close()
    assert scraped.status_code == 200
    values = _samples(scraped.text)
    assert values[("neanelu_webhooks_total", (("outcome", "rejected"), ("reason", "hmac")))] == 2
    assert (
        values[
            (
                "neanelu_http_requests_total",
                (("method", "POST"), ("route", "/api/webhooks"), ("status", "401")),
            )
        ]
        == 2
    )
    accepted_n = values[("neanelu_webhooks_total", (("outcome", "accepted"), ("reason", "ok")))]
    assert accepted_n >= 1
    completed = values[
        (
            "neanelu_queue_jobs_finished_total",
            (("outcome", "completed"), ("queue", "webhook"), ("task", "webhooks.process")),
        )
    ]
    assert completed >= 1
    assert (
        values[
            (
                "neanelu_queue_run_seconds_count",
                (("queue", "webhook"), ("task", "webhooks.process")),
            )
        ]
        >= completed
    )
    assert values[("neanelu_queue_wait_seconds_count", (("queue", "webhook"),))] >= 1
    assert values[("neanelu_queue_jobs", (("queue", "webhook"), ("state", "dead")))] == 0
    actual = [
        v
        for (name, labels), v in values.items()
        if name == "neanelu_shopify_cost_points_total" and ("kind", "actual") in labels
    ]
    assert actual
    assert sum(actual) > 0
    assert any(name == "neanelu_shopify_budget_remaining_ratio_count" for name, _ in values)
