"""Key rotation: every stored token re-sealed under the current key, one shop per transaction.

Runs beside a live service: both keys are loaded while it runs, each row is locked only for its
own re-seal, and a token refreshed meanwhile is simply already under the current key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.shops import owner_apps, repository
from neanelu.vault import TokenVault, VaultError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RotationReport:
    resealed: int
    failed: int
    key_id: str
    owner_apps_resealed: int = 0


async def rotate_keys(
    pool: AsyncConnectionPool[Conn], vault: TokenVault, *, batch: int = 200
) -> RotationReport:
    resealed = failed = 0
    skip: set[object] = set()
    while True:
        async with global_scope(pool) as conn:
            ids = await repository.tokens_not_under(conn, vault.current_key_id, batch + len(skip))
        todo = [i for i in ids if i not in skip]
        if not todo:
            break
        for shop_id in todo:
            try:
                # Tokens are read and written in the shop's own tenant scope only.
                async with tenant_scope(pool, shop_id) as conn:
                    row = await repository.get(conn, shop_id, for_update=True)
                    if row is None or row.access_token is None:
                        continue
                    access = vault.reseal(row.access_token, shop_id=shop_id, kind="access")
                    refresh = (
                        vault.reseal(row.refresh_token, shop_id=shop_id, kind="refresh")
                        if row.refresh_token is not None
                        else None
                    )
                    await repository.store_tokens(
                        conn,
                        shop_id,
                        access=access,
                        access_expires_at=row.access_token_expires_at,
                        refresh=refresh,
                        refresh_expires_at=row.refresh_token_expires_at,
                    )
                resealed += 1
            except VaultError as exc:
                # A key missing from the configuration: report the shop, keep rotating the rest.
                log.error("shop %s: token not re-sealed: %s", shop_id, exc)
                skip.add(shop_id)
                failed += 1
    # Other apps' tokens (their own table, under row-level security, one shop at a time).
    owners_resealed, owners_failed = await owner_apps.reseal_all(pool, vault)
    return RotationReport(resealed, failed + owners_failed, vault.current_key_id, owners_resealed)
