"""Prometheus metrics: one `Metrics` (its own registry) per process, built by the entrypoint.

Labels are bounded sets (queue, task, phase, plan, outcome, route template): never a shop id, so
the series count does not grow with the number of shops. Per-shop detail lives in traces and logs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_BUCKETS = (0.005, 0.025, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
RATIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def plan_of(restore_rate: float) -> str:
    """Shopify's GraphQL restore rate tells the shop's plan tier (points per second)."""
    if restore_rate <= 50:
        return "legacy"
    if restore_rate <= 100:
        return "standard"
    if restore_rate <= 200:
        return "advanced"
    if restore_rate <= 1000:
        return "plus"
    return "enterprise"


class Metrics:
    """Every series neanelu exports. Created once per process (`setup_metrics`), or per test."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        # HTTP
        self.http_requests = Counter(
            "neanelu_http_requests",
            "HTTP requests answered, by route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "neanelu_http_request_duration_seconds",
            "HTTP request latency until the response is sent",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.webhooks = Counter(
            "neanelu_webhooks",
            "Webhook deliveries accepted or rejected, by reason",
            ["outcome", "reason"],
            registry=r,
        )
        self.ready = Gauge(
            "neanelu_ready", "1 when the last readiness check passed, else 0", registry=r
        )
        # Queue
        self.queue_jobs = Gauge(
            "neanelu_queue_jobs",
            "Jobs in each state now (sampled from Redis; every process reports the same values)",
            ["queue", "state"],
            registry=r,
        )
        self.queue_wait = Histogram(
            "neanelu_queue_wait_seconds",
            "Time from when a job was due to when a worker started it",
            ["queue"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.queue_run = Histogram(
            "neanelu_queue_run_seconds",
            "Handler run time",
            ["queue", "task"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        self.queue_finished = Counter(
            "neanelu_queue_jobs_finished",
            "Handler runs by outcome (completed, retry, dead, failed, deferred, throttled, lost)",
            ["queue", "task", "outcome"],
            registry=r,
        )
        self.queue_retries = Counter(
            "neanelu_queue_retries",
            "Runs that failed and were scheduled again",
            ["queue"],
            registry=r,
        )
        self.queue_stalls = Counter(
            "neanelu_queue_stalls",
            "Leases that expired without a report (a worker died or hung)",
            ["queue"],
            registry=r,
        )
        self.queue_throttles = Counter(
            "neanelu_queue_throttles",
            "Jobs deferred because the shop's Shopify budget was empty",
            ["queue"],
            registry=r,
        )
        self.queue_dead_lettered = Counter(
            "neanelu_queue_dead_lettered",
            "Jobs moved to the dead-letter set",
            ["queue"],
            registry=r,
        )
        self.worker_running = Gauge(
            "neanelu_worker_running_jobs", "Jobs running in this process", ["queue"], registry=r
        )
        # Ingest
        self.ingest_lines = Counter(
            "neanelu_ingest_lines", "JSONL lines decoded", ["phase"], registry=r
        )
        self.ingest_rows = Counter(
            "neanelu_ingest_rows", "Rows copied into staging or merged", ["phase"], registry=r
        )
        self.ingest_bytes = Counter(
            "neanelu_ingest_bytes", "Bulk file bytes downloaded", ["phase"], registry=r
        )
        self.ingest_bad_lines = Counter(
            "neanelu_ingest_bad_lines", "Lines quarantined", ["phase"], registry=r
        )
        self.ingest_rows_per_second = Gauge(
            "neanelu_ingest_rows_per_second",
            "Rows per second of the last finished phase in this process",
            ["phase"],
            registry=r,
        )
        self.ingest_phase_seconds = Histogram(
            "neanelu_ingest_phase_seconds",
            "Duration of one ingest phase (download through COPY, or merge)",
            ["phase"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        # Shopify
        self.shopify_requests = Counter(
            "neanelu_shopify_requests",
            "Admin GraphQL calls by outcome",
            ["outcome"],
            registry=r,
        )
        self.shopify_cost = Counter(
            "neanelu_shopify_cost_points",
            "GraphQL cost points used (actual) and asked for (requested), by plan",
            ["plan", "kind"],
            registry=r,
        )
        self.shopify_throttles = Counter(
            "neanelu_shopify_throttles",
            "Throttle events from Shopify (THROTTLED or HTTP 429), by plan",
            ["plan", "reason"],
            registry=r,
        )
        self.shopify_budget_remaining = Histogram(
            "neanelu_shopify_budget_remaining_ratio",
            "Share of the shop's cost bucket left after each call, by plan",
            ["plan"],
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.bulk_wakeups = Counter(
            "neanelu_bulk_wait_wakeups",
            "Waits for a bulk operation that ended, by what ended them (webhook: "
            "bulk_operations/finish; poll: the poll interval passed)",
            ["reason"],
            registry=r,
        )
        self.bulk_restarts = Counter(
            "neanelu_bulk_restarts",
            "Bulk operations started again in the same run, by why they ended (expired, timeout)",
            ["reason"],
            registry=r,
        )
        self.bulk_url_renewals = Counter(
            "neanelu_bulk_url_renewals",
            "Result URLs the storage host refused as expired, replaced by asking for the "
            "operation again",
            registry=r,
        )
        # Shops and syncs
        self.token_refreshes = Counter(
            "neanelu_token_refreshes",
            "Offline access token refreshes by outcome (ok, failed) and trigger (use: a call "
            "found it expiring; sweep: the periodic sweep refreshed it ahead of use)",
            ["outcome", "trigger"],
            registry=r,
        )
        self.shops_needing_reauth = Gauge(
            "neanelu_shops_needing_reauth",
            "Shops whose token Shopify refused to refresh (the merchant must open the app again), "
            "as the last token sweep counted them",
            registry=r,
        )
        self.sync_runs = Counter(
            "neanelu_sync_runs",
            "Sync runs finished, by kind and outcome (completed, failed, retry)",
            ["kind", "outcome"],
            registry=r,
        )
        self.sync_duration = Histogram(
            "neanelu_sync_run_seconds",
            "Duration of one sync attempt",
            ["kind", "outcome"],
            buckets=JOB_BUCKETS,
            registry=r,
        )
        # Semantic search
        self.search_embedded = Counter(
            "neanelu_search_embedded",
            "Product texts embedded, by provider",
            ["provider"],
            registry=r,
        )
        self.search_embed_seconds = Histogram(
            "neanelu_search_embed_batch_seconds",
            "Time to embed one page of changed products",
            ["provider"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.search_batch_polls = Counter(
            "neanelu_search_batch_polls",
            "Polls of OpenAI embedding batches, by the status they found",
            ["status"],
            registry=r,
        )
        self.search_seconds = Histogram(
            "neanelu_search_seconds",
            "Hybrid search latency, query embedding included",
            ["store"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def names(self) -> set[str]:
        """Every sample name this registry exposes (with `_total`, `_bucket`, ...)."""
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",),
        }
        # Labelled series have no samples until first used, so names come from the families.
        return {
            family.name + suffix
            for family in self.registry.collect()
            for suffix in suffixes.get(family.type, ("",))
        }

    def observe_budget(self, *, maximum: float, available: float, restore_rate: float) -> None:
        if maximum > 0:
            self.shopify_budget_remaining.labels(plan_of(restore_rate)).observe(
                max(0.0, min(1.0, available / maximum))
            )


_lock = threading.Lock()
_process: Metrics | None = None
_fallback: Metrics | None = None


def setup_metrics() -> Metrics:
    """The process's metrics, built on first call (each entrypoint calls it once)."""
    global _process
    with _lock:
        if _process is None:
            _process = Metrics()
        return _process


def install_metrics(metrics: Metrics | None) -> Metrics | None:
    """Make `metrics` the process's (tests use a fresh one per case); returns the previous."""
    global _process
    with _lock:
        previous, _process = _process, metrics
        return previous


def current_metrics() -> Metrics:
    """The process's metrics. Code that runs where no entrypoint set them up (a library used from
    a script) still counts, into a registry nobody serves."""
    global _fallback
    if _process is not None:
        return _process
    with _lock:
        if _fallback is None:
            _fallback = Metrics()
        return _fallback


@dataclass(slots=True)
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5.0)


def serve_metrics(metrics: Metrics, port: int, addr: str = "127.0.0.1") -> MetricsServer:
    """`/metrics` of a worker process on its own port, from a daemon thread (port 0: any free);
    loopback unless the caller names another address."""
    server, thread = start_http_server(port, addr, registry=metrics.registry)
    return MetricsServer(server, thread)
