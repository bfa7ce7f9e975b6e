"""Shop lifecycle: install, scopes update, uninstall, per-shop API keys (purges: `purge`); the
install and the uninstall queue their follow-up jobs in the same transaction.

Services take the open connection as their first argument and never commit: the route or the
task wrapper owns the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from neanelu.db.pool import Conn, bind_tenant
from neanelu.handles import (
    MAINTENANCE_GROUP,
    ShopRef,
    enqueue_full_sync,
    purge_shop,
    subscribe_webhooks,
)
from neanelu.queue.settings import QUEUE_NAMES
from neanelu.runtime import Runtime
from neanelu.shopify.oauth import TokenGrant
from neanelu.shops import repository
from neanelu.shops.tokens import seal_grant
from neanelu.vault import TokenVault

# Shopify sends shop/redact 48 h after an uninstall; the purge waits for the same window so a
# quick reinstall finds its catalog still there.
PURGE_DELAY = timedelta(hours=48)
API_KEY_PREFIX = "nk_"


async def store_install(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> tuple[UUID, bool]:
    """Create or reactivate the shop and store its new tokens, sealed. A reinstall cancels a
    pending purge. Returns the shop id and whether the shop is new."""
    shop_id, new_shop = await repository.ensure(conn, domain)
    # The shop's row is written in its own tenant scope: the rest of this transaction is the
    # shop's (the jobs queued with it go to the outbox, which has no tenant).
    await bind_tenant(conn, shop_id)
    await _store_grant(conn, vault, shop_id, grant)
    return shop_id, new_shop


async def store_exchanged_install(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> tuple[UUID, bool, bool]:
    """`store_install` for a token exchange. Returns the shop id, whether the shop is new, and
    whether this installs the app afresh (a new shop, or one that had uninstalled), as opposed to
    new tokens for a shop that is installed (a repeat) or waiting for re-authorization. The shop
    row is locked first, so of two exchanges at once for a new shop only one finds it fresh."""
    shop_id, new_shop = await repository.ensure(conn, domain)
    await bind_tenant(conn, shop_id)
    row = None if new_shop else await repository.get(conn, shop_id, for_update=True)
    await _store_grant(conn, vault, shop_id, grant)
    return shop_id, new_shop, new_shop or row is None or row.status == repository.UNINSTALLED


async def _store_grant(conn: Conn, vault: TokenVault, shop_id: UUID, grant: TokenGrant) -> None:
    access, access_exp, refresh, refresh_exp = seal_grant(vault, shop_id, grant)
    await repository.store_install(
        conn,
        shop_id,
        scopes=grant.scopes,
        access=access,
        access_expires_at=access_exp,
        refresh=refresh,
        refresh_expires_at=refresh_exp,
    )


async def resume_shop_queues(rt: Runtime, shop_id: UUID) -> None:
    """After a reinstall: let the shop's jobs run again (uninstall paused them)."""
    for name in QUEUE_NAMES:
        if name in rt.queues.names:
            await rt.queues.queue(name).resume_group(str(shop_id))


async def pause_shop_queues(rt: Runtime, shop_id: UUID) -> None:
    for name in QUEUE_NAMES:
        if name in rt.queues.names:
            await rt.queues.queue(name).pause_group(str(shop_id))


async def mark_uninstalled(
    conn: Conn,
    shop_id: UUID,
    *,
    shopify_shop_id: int | None = None,
    now: datetime | None = None,
) -> datetime:
    """Drop the tokens (Shopify revoked them) and set when the shop's data will be purged."""
    purge_after = (now or datetime.now(UTC)) + PURGE_DELAY
    await repository.mark_uninstalled(conn, shop_id, purge_after, shopify_shop_id)
    return purge_after


async def update_scopes(conn: Conn, shop_id: UUID, scopes: tuple[str, ...]) -> None:
    await repository.set_scopes(conn, shop_id, scopes)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


async def issue_api_key(conn: Conn, shop_id: UUID) -> str:
    """A new service-to-service key for the shop (replacing any previous one); only its hash is
    stored, so the key is shown once."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    await repository.set_api_key_hash(conn, shop_id, hash_api_key(key))
    return key


# -- steps that write and enqueue in one transaction (the caller's) -----------------------------


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
    shop_id, new_shop = await store_install(conn, vault, domain, grant)
    job_id = await _queue_first_sync(conn, shop_id)
    return InstallResult(shop_id, domain, new_shop, job_id)


async def complete_token_exchange(
    conn: Conn, vault: TokenVault, domain: str, grant: TokenGrant
) -> InstallResult:
    """An embedded app's install: tokens stored as the OAuth callback stores them; webhook
    subscriptions and the first full sync queued only when this installs the app afresh (an
    exchange repeated for an installed shop, or a re-authorization, queues nothing)."""
    shop_id, new_shop, fresh = await store_exchanged_install(conn, vault, domain, grant)
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
    purge_after = await mark_uninstalled(conn, shop_id, shopify_shop_id=shopify_shop_id)
    await purge_shop.enqueue_in_tx(
        conn,
        ShopRef(shop_id=str(shop_id)),
        # Not the shop's own group: uninstall pauses that one.
        group=MAINTENANCE_GROUP,
        job_id=f"purge-{shop_id}-{int(purge_after.timestamp())}",
        delay_s=PURGE_DELAY.total_seconds(),
    )
    return purge_after
