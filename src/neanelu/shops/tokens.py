"""A shop's access token, refreshed before it expires, one refresh at a time across processes.

Shopify replaces the refresh token on every use and keeps the previous one valid until the new one
is first used. So the new pair is written to the database before anything uses it: if this process
dies after Shopify answered and before the commit, the stored (previous) refresh token still works
and the next refresh simply repeats. A Redis lock keeps two processes from refreshing the same shop
at once, which would burn one of the two new refresh tokens.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import SecretStr

from neanelu.config import Settings
from neanelu.db.pool import tenant_scope
from neanelu.queue.redis_keys import DEFAULT_PREFIX
from neanelu.runtime import Runtime
from neanelu.shopify.budget import CostBudget, UnlimitedBudget
from neanelu.shopify.errors import AccessDenied, TransientError
from neanelu.shopify.graphql import AdminClient, ShopEndpoint
from neanelu.shopify.oauth import OAuthError, TokenGrant
from neanelu.shops import repository
from neanelu.telemetry import current_metrics
from neanelu.vault import Sealed, TokenVault

log = logging.getLogger(__name__)

# Refresh this long before expiry, so a job that starts now still has a valid token at its end.
REFRESH_MARGIN = timedelta(minutes=5)
LOCK_TTL_MS = 30_000
_WAIT_STEP_S = 0.05
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class ShopUnavailable(Exception):
    """The shop has no usable token (uninstalled, or needs the merchant to re-authorize)."""


def lock_key(shop_id: UUID, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}:shop:{shop_id}:token-refresh"


def seal_grant(
    vault: TokenVault, shop_id: UUID, grant: TokenGrant
) -> tuple[Sealed, datetime | None, Sealed | None, datetime | None]:
    access = vault.seal(grant.access_token, shop_id=shop_id, kind="access")
    refresh = (
        vault.seal(grant.refresh_token, shop_id=shop_id, kind="refresh")
        if grant.refresh_token is not None
        else None
    )
    return (
        access,
        _at(grant.expires_at),
        refresh,
        _at(grant.refresh_token_expires_at),
    )


def _at(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, tz=UTC)


def _needs_refresh(row: repository.ShopRow, now: datetime) -> bool:
    expires = row.access_token_expires_at
    return expires is not None and row.refresh_token is not None and expires - REFRESH_MARGIN <= now


async def access_token(rt: Runtime, shop_id: UUID, *, force_refresh: bool = False) -> SecretStr:
    """A token valid for at least `REFRESH_MARGIN`, refreshing it first when needed."""
    deadline = time.monotonic() + LOCK_TTL_MS / 1000
    while True:
        # The sealed tokens are readable in the shop's own tenant scope only.
        async with tenant_scope(rt.pool, shop_id) as conn:
            row = await repository.get(conn, shop_id)
        if row is None or row.status != repository.INSTALLED or row.access_token is None:
            raise ShopUnavailable(f"shop {shop_id} has no usable token")
        if not force_refresh and not _needs_refresh(row, datetime.now(UTC)):
            return rt.vault.open(row.access_token, shop_id=shop_id, kind="access")
        held = await _refresh_once(
            rt, shop_id, seen_expiry=row.access_token_expires_at, trigger="use"
        )
        if held:
            force_refresh = False
            continue
        # Another process holds the lock: its refresh lands in the database; read again shortly.
        if time.monotonic() > deadline:
            raise TransientError(f"shop {shop_id}: token refresh by another process timed out")
        await asyncio.sleep(_WAIT_STEP_S)


async def refresh_if_due(rt: Runtime, shop_id: UUID, *, seen_expiry: datetime) -> bool:
    """The proactive path: refresh the token that expires at `seen_expiry` (what the sweep
    listed), unless another process is refreshing it right now (its lock held) or already has
    (the stored expiry moved). True when this call refreshed it. Raises ShopUnavailable when
    Shopify refused (the shop then needs re-authorization) and TransientError when Shopify could
    not be reached."""
    async with tenant_scope(rt.pool, shop_id) as conn:
        row = await repository.get(conn, shop_id)
    if row is None or row.status != repository.INSTALLED or row.refresh_token is None:
        return False
    if row.access_token_expires_at != seen_expiry:
        return False  # refreshed since the sweep listed it
    return await _refresh_once(
        rt, shop_id, seen_expiry=seen_expiry, trigger="sweep", report_skip=True
    )


async def _refresh_once(
    rt: Runtime,
    shop_id: UUID,
    *,
    seen_expiry: datetime | None,
    trigger: str,
    report_skip: bool = False,
) -> bool:
    """Refresh under the lock; False when another process holds it. With `report_skip`, also
    False when someone refreshed between the caller's read and the lock (True otherwise: the
    caller on use only needs to read the row again)."""
    token = secrets.token_hex(16)
    key = lock_key(shop_id)
    if not await rt.redis.set(key, token, nx=True, px=LOCK_TTL_MS):
        return False
    try:
        async with tenant_scope(rt.pool, shop_id) as conn:
            row = await repository.get(conn, shop_id, for_update=True)
            if row is None or row.status != repository.INSTALLED or row.refresh_token is None:
                raise ShopUnavailable(f"shop {shop_id} has no refresh token")
            if row.access_token_expires_at != seen_expiry:
                # Refreshed by someone else between our read and the lock.
                return not report_skip
            refresh = rt.vault.open(row.refresh_token, shop_id=shop_id, kind="refresh")
            refused = ""
            try:
                grant: TokenGrant | None = await rt.token_client.refresh(row.domain, refresh)
            except TransientError:
                current_metrics().token_refreshes.labels("failed", trigger).inc()
                raise
            except (OAuthError, AccessDenied) as exc:
                # Recorded in this transaction, which commits: the raise comes after it.
                await repository.set_status(conn, shop_id, repository.NEEDS_REAUTH)
                # The message names the domain and the HTTP status, never a token.
                refused, grant = f"{type(exc).__name__}: {exc}", None
            if grant is not None:
                access, access_exp, new_refresh, refresh_exp = seal_grant(rt.vault, shop_id, grant)
                await repository.store_tokens(
                    conn,
                    shop_id,
                    access=access,
                    access_expires_at=access_exp,
                    # No new refresh token in the answer: the current one stays in use.
                    refresh=new_refresh or row.refresh_token,
                    refresh_expires_at=refresh_exp if new_refresh else row.refresh_token_expires_at,
                )
        if grant is None:
            current_metrics().token_refreshes.labels("failed", trigger).inc()
            # Visible on purpose: the merchant must open the app again to re-authorize.
            log.warning(
                "shop %s (%s) needs re-authorization: token refresh refused (%s)",
                shop_id,
                row.domain,
                refused,
            )
            raise ShopUnavailable(f"shop {shop_id} needs re-authorization")
        current_metrics().token_refreshes.labels("ok", trigger).inc()
        log.info("shop %s: access token refreshed (%s)", shop_id, trigger)
        return True
    finally:
        await rt.redis.eval(_RELEASE, 1, key, token)


def shop_endpoint(settings: Settings, domain: str) -> ShopEndpoint:
    """The shop's Admin API address under the configured version and base URL."""
    return ShopEndpoint(domain, settings.shopify_api_version, settings.shopify_base_url)


async def admin_client(
    rt: Runtime, shop_id: UUID, domain: str, budget: CostBudget | None = None
) -> AdminClient:
    token = await access_token(rt, shop_id)
    s = rt.settings
    return AdminClient(
        rt.http,
        shop_endpoint(s, domain),
        token.get_secret_value(),
        budget or UnlimitedBudget(),
    )
