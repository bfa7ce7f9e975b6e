"""What task handlers reach besides their payload: the process's pools and clients.

The queue calls handlers as `handler(ctx, payload)`; the composition root (`neanelu worker`, or a
test) builds one `Runtime` per process and binds it with `bind_runtime` before starting the worker,
so every job task inherits it through its context. Nothing is created at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import httpx
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis

from neanelu.config import Settings
from neanelu.db.pool import Conn
from neanelu.queue.client import QueueClient
from neanelu.shopify.oauth import TokenClient
from neanelu.shops.vault import TokenVault


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


_current: ContextVar[Runtime] = ContextVar("neanelu_runtime")


@contextmanager
def bind_runtime(runtime: Runtime) -> Iterator[Runtime]:
    token = _current.set(runtime)
    try:
        yield runtime
    finally:
        _current.reset(token)


def current_runtime() -> Runtime:
    try:
        return _current.get()
    except LookupError:
        raise RuntimeError(
            "no Runtime is bound: call bind_runtime() before running tasks"
        ) from None


def app_secrets(settings: Settings) -> tuple[str, ...]:
    """The app secret, then the previous one while Shopify rotates it."""
    previous = settings.shopify_api_secret_previous
    current = settings.shopify_api_secret.get_secret_value()
    return (current,) if previous is None else (current, previous.get_secret_value())
