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
    # Subscriptions and the first full sync were queued (the job's id), or nothing was: the
    # shop was installed already.
    full_sync_job_id: str | None


async def complete_install(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> InstallResult:
    """Tokens stored sealed; webhook subscriptions and the first full sync queued with them."""
    shop_id, new_shop = await service.store_install(conn, vault, domain, grant)
    job_id = await _queue_first_sync(conn, shop_id)
    return InstallResult(shop_id, domain, new_shop, job_id)


async def complete_token_exchange(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> InstallResult:
    """An embedded app's install: tokens stored as the OAuth callback stores them; webhook
    subscriptions and the first full sync queued only when this installs the app afresh (an
    exchange repeated for an installed shop, or a re-authorization, queues nothing)."""
    shop_id, new_shop, fresh = await service.store_exchanged_install(conn, vault, domain, grant)
    job_id = await _queue_first_sync(conn, shop_id) if fresh else None
    return InstallResult(shop_id, domain, new_shop, job_id)


async def _queue_first_sync(conn: Conn, shop_id: UUID) -> str:
    await subscribe_webhooks.enqueue_in_tx(
        conn,
        ShopRef(shop_id=str(shop_id)),
        group=shop_id,
        job_id=f"subscribe-{shop_id}-{secrets.token_hex(6)}",
    )
    return await enqueue_full_sync(conn, shop_id, reason="install")


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
