"""`neanelu worker`: the one registry of every task, and the loop that runs them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from neanelu.config import Settings
from neanelu.db.services import ServiceUrls
from neanelu.queue import Registry
from neanelu.queue.settings import BULK
from neanelu.queue.worker import run_worker
from neanelu.semantic import tasks as search_tasks
from neanelu.shops import tasks as shop_tasks
from neanelu.shops import token_sweep
from neanelu.sync import parity
from neanelu.sync import tasks as sync_tasks
from neanelu.telemetry import (
    Metrics,
    MetricsServer,
    serve_metrics,
    setup_telemetry,
    shutdown_tracing,
)
from neanelu.webhooks import tasks as webhook_tasks
from neanelu.worker.rebuild import resume_delay_s, watch_books
from neanelu.worker.resources import open_resources

log = logging.getLogger(__name__)


def worker_metrics(metrics: Metrics, settings: Settings) -> MetricsServer | None:
    """Each worker serves its own /metrics (Prometheus scrapes every process) on METRICS_HOST,
    loopback by default. A port already taken (a second worker on the host) costs the metrics
    endpoint, not the worker."""
    if not settings.metrics_port:
        return None
    try:
        return serve_metrics(metrics, settings.metrics_port, settings.metrics_host)
    except OSError as exc:
        log.warning(
            "worker metrics not served on %s port %d: %s",
            settings.metrics_host,
            settings.metrics_port,
            exc,
        )
        return None


def build_registry() -> Registry:
    """Every task of every domain (`neanelu.handles`), bound to its handler once."""
    registry = Registry()
    sync_tasks.register(registry)
    parity.register(registry)
    shop_tasks.register(registry)
    token_sweep.register(registry)
    webhook_tasks.register(registry)
    search_tasks.register(registry)
    return registry


async def serve_worker(
    settings: Settings,
    services: ServiceUrls,
    *,
    queues: Sequence[str],
    concurrency: int,
    stop: asyncio.Event | None = None,
) -> None:
    stop = stop or asyncio.Event()
    telemetry = setup_telemetry(settings, "neanelu-worker")
    metrics_server = worker_metrics(telemetry.metrics, settings)
    try:
        async with open_resources(settings, services, concurrency=concurrency) as resources:
            rt = resources.runtime
            # An emptied Redis is refilled from PostgreSQL (worker/rebuild.py).
            watcher = asyncio.create_task(
                watch_books(
                    rt.redis,
                    rt.pool,
                    rt.queues.prefix,
                    stop,
                    sync_delay_s=resume_delay_s(rt.queues.queue(BULK).settings),
                ),
                name="queue-books",
            )
            try:
                await run_worker(
                    settings,
                    build_registry(),
                    queues,
                    concurrency,
                    stop,
                    pool=rt.pool,
                    resources=resources.by_type(),
                    redis=rt.redis,
                )
            finally:
                stop.set()
                await watcher
    finally:
        if metrics_server is not None:
            metrics_server.close()
        shutdown_tracing()
