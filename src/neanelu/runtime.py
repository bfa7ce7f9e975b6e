"""The process kernel: settings, the PostgreSQL pool, Redis, the outbound HTTP client, the token
vault and the queue client, opened once per process and closed when it ends.

A composition root opens it: the API's lifespan (`neanelu serve`, reached by requests through
`neanelu.web.deps`), the worker (`neanelu worker`, reached by tasks through
`JobContext.resource(Runtime)`) and the CLI commands that need it. It sits below the domains, so
any of them may take it as a parameter; nothing here is created at import time and nothing looks
it up from a global.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.config import Settings
from neanelu.db.pool import Conn, PoolSizes, create_pool
from neanelu.db.services import ServiceUrls
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import default_queues
from neanelu.shopify.oauth import TokenClient
from neanelu.vault import TokenVault


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings = field(repr=False)
    pool: AsyncConnectionPool[Conn]
    redis: Redis
    http: httpx.AsyncClient
    vault: TokenVault
    queues: QueueClient

    @property
    def token_client(self) -> TokenClient:
        s = self.settings
        return TokenClient(
            http=self.http,
            client_id=s.shopify_api_key,
            client_secret=s.shopify_api_secret,
            api_version=s.shopify_api_version,
            base_url=s.shopify_base_url,
        )


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    services: ServiceUrls,
    *,
    name: str,
    pool_max: int,
    http_timeout: httpx.Timeout,
) -> AsyncIterator[Runtime]:
    """The process's pool (as the application role), Redis, outbound HTTP client, vault and
    queue client, opened once by a composition root (the API's lifespan, the worker) and closed
    when it ends."""
    pool = create_pool(services.postgres_app, PoolSizes(settings.db_pool_min, pool_max), name=name)
    await pool.open(wait=True)
    redis = Redis.from_url(services.redis, max_connections=settings.redis_pool_max)
    http = httpx.AsyncClient(timeout=http_timeout, follow_redirects=False)
    try:
        yield Runtime(
            settings=settings,
            pool=pool,
            redis=redis,
            http=http,
            vault=TokenVault.from_settings(settings),
            queues=QueueClient(redis, default_queues(settings)),
        )
    finally:
        await http.aclose()
        await redis.aclose()
        await pool.close()


def app_secrets(settings: Settings) -> tuple[str, ...]:
    """The app secret, then the previous one while Shopify rotates it. An empty secret is never
    a key: with it anyone could sign (settings read an empty variable as unset; this holds even
    for settings built another way)."""
    candidates = (settings.shopify_api_secret, settings.shopify_api_secret_previous)
    return tuple(
        s.get_secret_value() for s in candidates if s is not None and s.get_secret_value().strip()
    )
