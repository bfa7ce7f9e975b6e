"""Everything a worker process opens once: pools, Redis, the HTTP client, the vault, the limiter."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from neanelu.config import Settings
from neanelu.db.pool import global_scope, tenant_scope
from neanelu.db.services import ServiceUrls
from neanelu.queue import CostLimiter
from neanelu.runtime import Runtime, open_runtime
from neanelu.shopify.bulk import BulkPolling
from neanelu.shopify.errors import AccessDenied
from neanelu.shopify.graphql import AdminClient
from neanelu.shops import owner_apps
from neanelu.shops import repository as shops
from neanelu.shops.tokens import ShopUnavailable, admin_client, shop_endpoint
from neanelu.sync.finish_signal import RedisFinishSignal
from neanelu.sync.owner_metafields import OwnerApp
from neanelu.sync.service import SyncDeps
from neanelu.vault import VaultError
from neanelu.worker.budget import LimiterBudget

log = logging.getLogger(__name__)

# Bulk work leaves a tenth of each shop's bucket to webhook work.
SYNC_BUDGET_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class RuntimeShopAccess:
    """Shop tokens from the vault (refreshed when due) with the shop's shared cost budget."""

    runtime: Runtime
    limiter: CostLimiter
    share: float = SYNC_BUDGET_SHARE

    async def admin_client(self, shop_id: UUID) -> AdminClient:
        async with global_scope(self.runtime.pool) as conn:
            row = await shops.get(conn, shop_id)
        if row is None:
            raise AccessDenied(f"shop {shop_id} is not installed")
        budget = LimiterBudget(self.limiter, str(shop_id), self.share)
        try:
            return await admin_client(self.runtime, shop_id, row.domain, budget)
        except ShopUnavailable as exc:
            raise AccessDenied(str(exc)) from None

    async def owner_apps(self, shop_id: UUID) -> list[OwnerApp]:
        """The shop's owner apps, each with its own client: Shopify keeps a cost bucket per app
        and shop, so each gets its own budget too."""
        async with global_scope(self.runtime.pool) as conn:
            row = await shops.get(conn, shop_id)
        if row is None:
            return []
        async with tenant_scope(self.runtime.pool, shop_id) as conn:
            registered = await owner_apps.list_apps(conn)
        endpoint = shop_endpoint(self.runtime.settings, row.domain)
        found: list[OwnerApp] = []
        for app in registered:
            client = None
            if app.token is not None:
                kind = owner_apps.token_kind(app.api_client_id)
                try:
                    token = self.runtime.vault.open(app.token, shop_id=shop_id, kind=kind)
                except VaultError as exc:
                    log.error("shop %s: owner app %s token: %s", shop_id, app.api_client_id, exc)
                else:
                    budget = LimiterBudget(
                        self.limiter, f"{shop_id}:app:{app.api_client_id}", self.share
                    )
                    client = AdminClient(
                        self.runtime.http, endpoint, token.get_secret_value(), budget
                    )
            found.append(OwnerApp(app.api_client_id, app.name, client))
        return found


@dataclass(frozen=True, slots=True)
class WorkerResources:
    runtime: Runtime
    sync: SyncDeps

    def by_type(self) -> dict[type, Any]:
        return {Runtime: self.runtime, SyncDeps: self.sync}


@asynccontextmanager
async def open_resources(
    settings: Settings, services: ServiceUrls, *, concurrency: int
) -> AsyncIterator[WorkerResources]:
    # Each running job may hold a connection, the outbox relay one more, and a full sync three
    # sessions (products, variants, inventory) plus one for its quarantine and run updates.
    async with open_runtime(
        settings,
        services,
        name="neanelu-worker",
        pool_max=max(settings.db_pool_max, 3 * concurrency + 2),
        http_timeout=httpx.Timeout(60.0, connect=10.0),
    ) as runtime:
        access = RuntimeShopAccess(runtime, CostLimiter(runtime.redis))
        # bulk_operations/finish wakes this process's syncs; polling stays as the fallback.
        finished = RedisFinishSignal(runtime.redis, prefix=runtime.queues.prefix)
        sync = SyncDeps(
            runtime.pool,
            runtime.http,
            access,
            runtime.redis,
            max_bad_share=settings.bad_line_max_share,
            owner_apps=access,
            bulk_polling=BulkPolling(signal=finished),
        )
        try:
            yield WorkerResources(runtime, sync)
        finally:
            await finished.close()
