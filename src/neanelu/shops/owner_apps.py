"""Other apps installed on a shop whose app-owned metafields a sync should read.

Shopify shows metafields in `app--{api_client_id}` namespaces only to the app that owns them
(addendum C), so neanelu's own token never sees them. A merchant or agency that holds such an
app's token for the shop registers it here (sealed by the vault like the shop's own token); an app
registered without a token is known but unreadable, and its metafields are reported unavailable by
every full sync, which keeps what is stored of them instead of replacing them with nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.db.rows import fetch_all, fetch_scalars
from neanelu.vault import Sealed, TokenVault, VaultError

log = logging.getLogger(__name__)

MAX_NAME = 200


def token_kind(api_client_id: int) -> str:
    """The vault's additional data: a sealed token opens only for its shop and its owner app."""
    return f"owner-app:{api_client_id}"


@dataclass(frozen=True, slots=True)
class OwnerAppRow:
    api_client_id: int
    name: str
    token: Sealed | None = field(repr=False)
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class _OwnerAppColumns:
    api_client_id: int
    name: str
    access_token_ct: bytes | None = field(repr=False)
    access_token_key_id: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class _SealedToken:
    api_client_id: int
    access_token_ct: bytes = field(repr=False)
    access_token_key_id: str


def validate(api_client_id: int, name: str) -> None:
    if api_client_id <= 0 or api_client_id >= 1 << 63:
        raise ValueError(f"api client id must be a positive 64-bit number, got {api_client_id}")
    if len(name) > MAX_NAME:
        raise ValueError(f"name is longer than {MAX_NAME} characters")


async def put(
    conn: Conn,
    vault: TokenVault,
    shop_id: UUID,
    api_client_id: int,
    *,
    name: str,
    token: SecretStr | None,
) -> None:
    """Register (or update) an owner app; without a token it is recorded as unreadable."""
    validate(api_client_id, name)
    sealed = (
        vault.seal(token, shop_id=shop_id, kind=token_kind(api_client_id))
        if token is not None
        else None
    )
    await conn.execute(
        "INSERT INTO owner_apps (shop_id, api_client_id, name, access_token_ct,"
        " access_token_key_id) VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (shop_id, api_client_id) DO UPDATE SET name = excluded.name,"
        " access_token_ct = excluded.access_token_ct,"
        " access_token_key_id = excluded.access_token_key_id, updated_at = now()",
        (
            shop_id,
            api_client_id,
            name,
            sealed.ciphertext if sealed else None,
            sealed.key_id if sealed else None,
        ),
    )


async def remove(conn: Conn, api_client_id: int) -> bool:
    cur = await conn.execute("DELETE FROM owner_apps WHERE api_client_id = %s", (api_client_id,))
    return cur.rowcount > 0


async def list_apps(conn: Conn) -> list[OwnerAppRow]:
    """The current shop's owner apps (row-level security picks the shop)."""
    rows = await fetch_all(
        conn,
        _OwnerAppColumns,
        "SELECT api_client_id, name, access_token_ct, access_token_key_id, updated_at"
        " FROM owner_apps ORDER BY api_client_id",
    )
    return [
        OwnerAppRow(
            int(r.api_client_id),
            r.name,
            Sealed(bytes(r.access_token_ct), r.access_token_key_id)
            if r.access_token_ct is not None and r.access_token_key_id is not None
            else None,
            r.updated_at,
        )
        for r in rows
    ]


async def reseal_all(pool: AsyncConnectionPool[Conn], vault: TokenVault) -> tuple[int, int]:
    """Key rotation for owner app tokens: (re-sealed, failed to open). One shop per transaction."""
    async with global_scope(pool) as conn:
        shop_ids = await fetch_scalars(conn, UUID, "SELECT id FROM shops ORDER BY id")
    resealed = failed = 0
    for shop_id in shop_ids:
        async with tenant_scope(pool, shop_id) as conn:
            stale = await fetch_all(
                conn,
                _SealedToken,
                "SELECT api_client_id, access_token_ct, access_token_key_id FROM owner_apps"
                " WHERE access_token_key_id IS DISTINCT FROM %s AND access_token_ct IS NOT NULL"
                " FOR UPDATE",
                (vault.current_key_id,),
            )
            for app in stale:
                api_client_id = app.api_client_id
                kind = token_kind(int(api_client_id))
                stored = Sealed(bytes(app.access_token_ct), app.access_token_key_id)
                try:
                    sealed = vault.reseal(stored, shop_id=shop_id, kind=kind)
                except VaultError as exc:
                    log.error(
                        "shop %s: owner app %s token not re-sealed: %s", shop_id, api_client_id, exc
                    )
                    failed += 1
                    continue
                await conn.execute(
                    "UPDATE owner_apps SET access_token_ct = %s, access_token_key_id = %s,"
                    " updated_at = now() WHERE api_client_id = %s",
                    (sealed.ciphertext, sealed.key_id, api_client_id),
                )
                resealed += 1
    return resealed, failed
