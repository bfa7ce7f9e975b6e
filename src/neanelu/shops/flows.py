"""Shop lifecycle steps that write and enqueue in one transaction (the caller's)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from neanelu.db.pool import Conn
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import service
from neanelu.shops.sync_link import enqueue_full_sync
from neanelu.shops.tasks import MAINTENANCE_GROUP, ShopRef, purge_shop, subscribe_webhooks
from neanelu.shops.vault import TokenVault


@dataclass(frozen=True, slots=True)
class InstallResult:
    shop_id: UUID
    domain: str
    new_shop: bool
    full_sync_job_id: str


async def complete_install(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> InstallResult:
    """Tokens stored sealed; webhook subscriptions and the first full sync queued with them."""
    shop_id, new_shop = await service.store_install(conn, vault, domain, grant)
    await subscribe_webhooks.enqueue_in_tx(
        conn,
        ShopRef(shop_id=str(shop_id)),
        group=shop_id,
        job_id=f"subscribe-{shop_id}-{secrets.token_hex(6)}",
    )
    job_id = await enqueue_full_sync(conn, shop_id, reason="install")
    return InstallResult(shop_id, domain, new_shop, job_id)


async def uninstall(conn: Conn, shop_id: UUID, *, shopify_shop_id: int | None = None) -> datetime:
    """Tokens dropped, purge queued for when Shopify's redact window ends."""
    purge_after = await service.mark_uninstalled(conn, shop_id, shopify_shop_id=shopify_shop_id)
    await purge_shop.enqueue_in_tx(
        conn,
        ShopRef(shop_id=str(shop_id)),
        # Not the shop's own group: uninstall pauses that one.
        group=MAINTENANCE_GROUP,
        job_id=f"purge-{shop_id}-{int(purge_after.timestamp())}",
        delay_s=service.PURGE_DELAY.total_seconds(),
    )
    return purge_after
