"""`create_app(settings, services)`: the FastAPI application with its lifespan.

The lifespan opens the PostgreSQL pool (as the application role), Redis, the outbound HTTP client
and the token vault once per process, and exposes them as one `Runtime` on `app.state`. Routers
come from the domains; nothing here knows a topic or a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.responses import Response

from neanelu.catalog.routes import router as catalog_router
from neanelu.config import Settings
from neanelu.db.migrate import head_revision
from neanelu.db.pool import global_scope
from neanelu.db.services import ServiceUrls
from neanelu.runtime import open_runtime
from neanelu.semantic.routes import router as search_router
from neanelu.semantic.tasks import schedule_sweep
from neanelu.shops.routes import router as auth_router
from neanelu.shops.tasks import schedule_reconciliation
from neanelu.shops.token_sweep import schedule_token_sweep
from neanelu.telemetry import Metrics, MetricsServer, instrument_app, serve_metrics, setup_telemetry
from neanelu.web import console
from neanelu.web.console.sampler import sample_forever
from neanelu.web.health import router as health_router
from neanelu.web.limits import BodyLimitMiddleware
from neanelu.webhooks.routes import router as webhooks_router
from neanelu.webhooks.service import InboxWriter, ShopDirectory

BENCH_BARE_ENV = "NEANELU_BENCH_BARE"
OUTBOUND_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# They cap their own bodies at WEBHOOK_MAX_BODY_BYTES (neanelu.webhooks.routes).
WEBHOOK_PATHS = ("/api/webhooks", "/api/webhooks/compliance")

log = logging.getLogger(__name__)


def _serve_api_metrics(settings: Settings, metrics: Metrics) -> MetricsServer | None:
    """/metrics on a port of its own: the API port is public (behind the proxy), the metrics
    port is for Prometheus. A port already taken (a second API process on the host) costs the
    endpoint, not the service."""
    if not settings.api_metrics_port:
        return None
    try:
        return serve_metrics(metrics, settings.api_metrics_port, settings.metrics_host)
    except OSError as exc:
        log.warning("API metrics not served on port %d: %s", settings.api_metrics_port, exc)
        return None


# The collector's thresholds once startup is frozen (CPython's default is 700, 10, 10). A delivery
# allocates a few hundred tracked objects, nearly all freed by reference counting, so at 2,000
# deliveries a second the default ran a young collection every 4.5 ms and, because frozen objects
# no longer count as long-lived, a full one every 100 of those: 8 % of the server's time and the
# millisecond stalls behind the webhook p99 (bench-webhooks at half rate: 13-16 ms, 9.6-11.3 ms
# with these, the same runs alternating). A young collection of up to 50,000 objects takes a few
# milliseconds and comes a few times a second at most.
GC_THRESHOLDS = (50_000, 50, 100)


def create_app(settings: Settings, services: ServiceUrls) -> FastAPI:
    # Once per process (repeat calls return what the first built): traces, logs, metrics.
    telemetry = setup_telemetry(settings, "neanelu-api")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_runtime(
            settings,
            services,
            name="neanelu-web",
            pool_max=settings.db_pool_max,
            http_timeout=OUTBOUND_TIMEOUT,
        ) as runtime:
            app.state.runtime = runtime
            async with global_scope(runtime.pool) as conn:
                # Idempotent per period: every API process may do it; one tick of each is
                # queued, and each tick queues the next.
                await schedule_reconciliation(conn)
                await schedule_token_sweep(conn)
                await schedule_sweep(conn, settings.search_sweep_interval_s)
            # Everything built so far (app, routes, schemas, pools) lives as long as the process:
            # moved out of the collector's sight, full collections stop walking it, which keeps
            # them from showing up as latency spikes on webhook deliveries.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)
            metrics_server = _serve_api_metrics(settings, telemetry.metrics)
            sampling = asyncio.create_task(sample_forever(runtime), name="console-sampler")
            try:
                yield
            finally:
                sampling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampling
                # Its lingering writers hold pool connections: handed back before the pool closes.
                await app.state.inbox_writer.close()
                if metrics_server is not None:
                    metrics_server.close()

    app = FastAPI(
        title="neanelu",
        summary="Shopify catalog mirror: install, webhooks, read API",
        version="0.1.0",
        lifespan=lifespan,
        # The schema maps every route and parameter: a guide for visitors in production.
        docs_url="/docs" if settings.docs_enabled else None,
        redoc_url="/redoc" if settings.docs_enabled else None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
        # FastAPI's own OpenTelemetry layer would add a span per operation (and its own metrics)
        # on top of neanelu's server span: at 10% sampling that alone cost a third of the
        # webhook throughput. neanelu.telemetry provides the server span and the metrics.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.migration_head = head_revision()
    app.state.shop_directory = ShopDirectory()
    app.state.inbox_writer = InboxWriter()
    app.include_router(health_router)
    app.include_router(auth_router)
    app.include_router(webhooks_router)
    app.include_router(catalog_router)
    app.include_router(search_router)
    console.install(app)
    # Inside the metrics middleware (added after it), so refusals are counted.
    app.add_middleware(
        BodyLimitMiddleware, limit=settings.http_max_body_bytes, exempt=WEBHOOK_PATHS
    )
    instrument_app(app, telemetry.metrics)
    if os.environ.get(BENCH_BARE_ENV) == "1":
        # The benchmark's baseline: the same server and stack, no work at all.
        @app.post("/bench/bare", include_in_schema=False)
        async def bare() -> Response:
            return Response(status_code=200)

    return app
