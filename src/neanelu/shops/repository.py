"""SQL for the `shops` table. Every row is readable without its secrets; a row is written only in
its own tenant scope (row-level security on `shops`, by command), and the few steps across shops
(the install's lookup by domain, API-key authentication) go through owner functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalar, fetch_scalars
from neanelu.vault import Sealed

INSTALLED = "installed"
NEEDS_REAUTH = "needs_reauth"
UNINSTALLED = "uninstalled"

# The sealed tokens are not readable columns for the application role: they come from
# app_shop_sealed_tokens(), which answers in the shop's own tenant scope only (NULL elsewhere).
_COLUMNS = sql.SQL(
    "s.id, s.domain, s.status, s.scopes, t.access_token_ct, s.access_token_key_id, "
    "s.access_token_expires_at, t.refresh_token_ct, s.refresh_token_key_id, "
    "s.refresh_token_expires_at, s.last_full_sync_at, s.last_incremental_sync_at, s.purge_after"
)
_FROM = sql.SQL("FROM shops s LEFT JOIN LATERAL app_shop_sealed_tokens(s.id) t ON true")


def _select(rest: sql.SQL) -> sql.Composed:
    """A read of whole shops: the columns and joins above, then `rest` (filter, order, lock)."""
    return sql.SQL("SELECT {} {} {}").format(_COLUMNS, _FROM, rest)


@dataclass(frozen=True, slots=True)
class ShopRow:
    id: UUID
    domain: str
    status: str
    scopes: tuple[str, ...]
    access_token: Sealed | None = field(repr=False)
    access_token_expires_at: datetime | None
    refresh_token: Sealed | None = field(repr=False)
    refresh_token_expires_at: datetime | None
    last_full_sync_at: datetime | None
    last_incremental_sync_at: datetime | None
    purge_after: datetime | None
    # Whether a sealed token is stored, readable in any scope (its key id is): the tokens
    # themselves are None outside the shop's own tenant scope.
    has_access_token: bool = False
    has_refresh_token: bool = False


def _sealed(ct: bytes | None, key_id: str | None) -> Sealed | None:
    return Sealed(bytes(ct), key_id) if ct is not None and key_id is not None else None


@dataclass(frozen=True, slots=True)
class _ShopColumns:
    """The columns of `_COLUMNS` as they come back, before the tokens are paired with their keys."""

    id: UUID
    domain: str
    status: str
    scopes: list[str] | None
    access_token_ct: bytes | None = field(repr=False)
    access_token_key_id: str | None
    access_token_expires_at: datetime | None
    refresh_token_ct: bytes | None = field(repr=False)
    refresh_token_key_id: str | None
    refresh_token_expires_at: datetime | None
    last_full_sync_at: datetime | None
    last_incremental_sync_at: datetime | None
    purge_after: datetime | None


def _row(r: _ShopColumns) -> ShopRow:
    return ShopRow(
        id=r.id,
        domain=r.domain,
        status=r.status,
        scopes=tuple(r.scopes or ()),
        access_token=_sealed(r.access_token_ct, r.access_token_key_id),
        access_token_expires_at=r.access_token_expires_at,
        refresh_token=_sealed(r.refresh_token_ct, r.refresh_token_key_id),
        refresh_token_expires_at=r.refresh_token_expires_at,
        last_full_sync_at=r.last_full_sync_at,
        last_incremental_sync_at=r.last_incremental_sync_at,
        purge_after=r.purge_after,
        has_access_token=r.access_token_key_id is not None,
        has_refresh_token=r.refresh_token_key_id is not None,
    )


@dataclass(frozen=True, slots=True)
class ShopStatus:
    """What webhook ingress and authentication need of a shop: its id and status."""

    id: UUID
    status: str


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """The shop an API key belongs to."""

    id: UUID
    domain: str
    status: str


@dataclass(frozen=True, slots=True)
class _Ensured:
    shop_id: UUID
    created: bool


@dataclass(frozen=True, slots=True)
class _LastSynced:
    id: UUID
    last_synced_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Expiring:
    id: UUID
    access_token_expires_at: datetime


class ShopNotWritten(RuntimeError):
    """An update of a shop's row wrote nothing: the shop is gone, or the transaction is not in
    its tenant scope (the application role writes no other shop's row)."""


async def _update(conn: Conn, shop_id: UUID, statement: str, params: tuple[Any, ...]) -> None:
    cur = await conn.execute(statement, params)
    if cur.rowcount == 0:
        raise ShopNotWritten(f"shop {shop_id}: no row updated (gone, or outside its tenant scope)")


async def get(conn: Conn, shop_id: UUID, *, for_update: bool = False) -> ShopRow | None:
    """The shop; its sealed tokens only in its own tenant scope, where alone it can be locked
    (`for_update`) too: elsewhere the tokens are None and a locking read finds no row."""
    rest = sql.SQL("WHERE s.id = %s FOR UPDATE OF s" if for_update else "WHERE s.id = %s")
    row = await fetch_one(conn, _ShopColumns, _select(rest), (shop_id,))
    return _row(row) if row else None


async def list_all(conn: Conn) -> list[ShopRow]:
    """Every shop known here, by domain (the operator's listing)."""
    query = _select(sql.SQL("ORDER BY s.domain"))
    return [_row(r) for r in await fetch_all(conn, _ShopColumns, query)]


async def get_by_domain(conn: Conn, domain: str) -> ShopRow | None:
    row = await fetch_one(conn, _ShopColumns, _select(sql.SQL("WHERE s.domain = %s")), (domain,))
    return _row(row) if row else None


async def lookup_status(conn: Conn, domain: str) -> ShopStatus | None:
    """The hot path of webhook ingress: id and status only."""
    return await fetch_one(
        conn, ShopStatus, "SELECT id, status FROM shops WHERE domain = %s", (domain,)
    )


async def holds_installed(conn: Conn, shop_id: UUID) -> bool:
    """Whether the shop is still installed, held so until the caller's transaction ends: the
    share lock keeps an uninstall (which updates the row) waiting for the caller's catalog writes
    to commit, or, if the uninstall went first, answers False. Never a catalog write after it."""
    status = await fetch_scalar(
        conn, str, "SELECT status FROM shops WHERE id = %s FOR SHARE", (shop_id,)
    )
    return status is not None and status != UNINSTALLED


async def ensure(conn: Conn, domain: str) -> tuple[UUID, bool]:
    """The shop's id, creating its row on first install (locked either way, until the caller's
    transaction ends); True when the row is new. The one write not in a shop's tenant scope."""
    row = await fetch_one(
        conn, _Ensured, "SELECT shop_id, created FROM app_ensure_shop(%s)", (domain,)
    )
    assert row is not None  # the function always answers one row
    return row.shop_id, row.created


async def store_install(
    conn: Conn,
    shop_id: UUID,
    *,
    scopes: tuple[str, ...],
    access: Sealed,
    access_expires_at: datetime | None,
    refresh: Sealed | None,
    refresh_expires_at: datetime | None,
) -> None:
    """A (re)install: new tokens, status installed, any pending purge cancelled."""
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET status = 'installed', scopes = %s, "
        "access_token_ct = %s, access_token_key_id = %s, access_token_expires_at = %s, "
        "refresh_token_ct = %s, refresh_token_key_id = %s, refresh_token_expires_at = %s, "
        "installed_at = now(), uninstalled_at = NULL, purge_after = NULL, updated_at = now() "
        "WHERE id = %s",
        (
            list(scopes),
            access.ciphertext,
            access.key_id,
            access_expires_at,
            refresh.ciphertext if refresh else None,
            refresh.key_id if refresh else None,
            refresh_expires_at,
            shop_id,
        ),
    )


async def store_tokens(
    conn: Conn,
    shop_id: UUID,
    *,
    access: Sealed,
    access_expires_at: datetime | None,
    refresh: Sealed | None,
    refresh_expires_at: datetime | None,
) -> None:
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET access_token_ct = %s, access_token_key_id = %s, "
        "access_token_expires_at = %s, refresh_token_ct = %s, refresh_token_key_id = %s, "
        "refresh_token_expires_at = %s, updated_at = now() WHERE id = %s",
        (
            access.ciphertext,
            access.key_id,
            access_expires_at,
            refresh.ciphertext if refresh else None,
            refresh.key_id if refresh else None,
            refresh_expires_at,
            shop_id,
        ),
    )


async def set_status(conn: Conn, shop_id: UUID, status: str) -> None:
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET status = %s, updated_at = now() WHERE id = %s",
        (status, shop_id),
    )


async def set_plan(
    conn: Conn, shop_id: UUID, plan_name: str | None, bucket: int | None, restore_rate: int | None
) -> None:
    """What Shopify reported last; a value it did not report keeps the stored one."""
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET plan_name = coalesce(%s, plan_name),"
        " api_bucket_size = coalesce(%s, api_bucket_size),"
        " api_restore_rate = coalesce(%s, api_restore_rate), updated_at = now() WHERE id = %s",
        (plan_name, bucket, restore_rate, shop_id),
    )


async def set_scopes(conn: Conn, shop_id: UUID, scopes: tuple[str, ...]) -> None:
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET scopes = %s, updated_at = now() WHERE id = %s",
        (list(scopes), shop_id),
    )


async def mark_uninstalled(
    conn: Conn, shop_id: UUID, purge_after: datetime, shopify_shop_id: int | None = None
) -> None:
    """Tokens are dropped, not kept: Shopify revoked them and they must not linger at rest.
    Shopify's numeric shop id (from the uninstall's payload) is kept for the shop/redact check."""
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET status = 'uninstalled', uninstalled_at = now(), purge_after = %s, "
        "access_token_ct = NULL, access_token_key_id = NULL, access_token_expires_at = NULL, "
        "refresh_token_ct = NULL, refresh_token_key_id = NULL, refresh_token_expires_at = NULL, "
        "api_key_hash = NULL, shopify_shop_id = coalesce(%s, shopify_shop_id), "
        "updated_at = now() WHERE id = %s",
        (purge_after, shopify_shop_id, shop_id),
    )


async def delete(conn: Conn, shop_id: UUID) -> bool:
    """The shop and, by cascade, every row of its catalog, runs and inbox (in its tenant scope,
    and only once it is uninstalled: the application role may delete nothing else)."""
    cur = await conn.execute("DELETE FROM shops WHERE id = %s", (shop_id,))
    return cur.rowcount > 0


async def set_api_key_hash(conn: Conn, shop_id: UUID, digest: bytes) -> None:
    await _update(
        conn,
        shop_id,
        "UPDATE shops SET api_key_hash = %s, updated_at = now() WHERE id = %s",
        (digest, shop_id),
    )


async def find_by_api_key_hash(conn: Conn, digest: bytes) -> KeyHolder | None:
    return await fetch_one(
        conn, KeyHolder, "SELECT id, domain, status FROM app_shop_by_api_key(%s)", (digest,)
    )


async def tokens_not_under(conn: Conn, key_id: str, limit: int) -> list[UUID]:
    """Shops with a token sealed under another key (the work list of a key rotation)."""
    return await fetch_scalars(
        conn,
        UUID,
        "SELECT id FROM shops WHERE (access_token_key_id IS NOT NULL "
        "AND access_token_key_id <> %s) OR (refresh_token_key_id IS NOT NULL "
        "AND refresh_token_key_id <> %s) ORDER BY id LIMIT %s",
        (key_id, key_id, limit),
    )


async def last_synced(conn: Conn) -> list[tuple[UUID, datetime | None]]:
    """Installed shops with the end of their latest (full or incremental) sync."""
    rows = await fetch_all(
        conn,
        _LastSynced,
        "SELECT id, greatest(last_full_sync_at, last_incremental_sync_at) AS last_synced_at "
        "FROM shops WHERE status = 'installed' ORDER BY id",
    )
    return [(r.id, r.last_synced_at) for r in rows]


async def tokens_expiring_before(conn: Conn, before: datetime) -> list[tuple[UUID, datetime]]:
    """Installed shops whose access token expires before `before` and can be refreshed (the work
    list of the token sweep), soonest first. The sealed refresh token is no column the
    application role reads: its key id says one is there."""
    rows = await fetch_all(
        conn,
        _Expiring,
        "SELECT id, access_token_expires_at FROM shops WHERE status = 'installed' "
        "AND refresh_token_key_id IS NOT NULL AND access_token_expires_at < %s "
        "ORDER BY access_token_expires_at",
        (before,),
    )
    return [(r.id, r.access_token_expires_at) for r in rows]


async def count_by_status(conn: Conn, status: str) -> int:
    found = await fetch_scalar(conn, int, "SELECT count(*) FROM shops WHERE status = %s", (status,))
    return found or 0


@dataclass(frozen=True, slots=True)
class PurgeState:
    """What decides whether a purge of the shop is due."""

    domain: str
    status: str
    shopify_shop_id: int | None
    installed_at: datetime | None
    uninstalled_at: datetime | None
    purge_after: datetime | None


async def lock_for_purge(conn: Conn, shop_id: UUID) -> PurgeState | None:
    """The shop's lifecycle state, its row locked (the caller's tenant scope) until commit."""
    return await fetch_one(
        conn,
        PurgeState,
        "SELECT domain, status, shopify_shop_id, installed_at, uninstalled_at, purge_after "
        "FROM shops WHERE id = %s FOR UPDATE",
        (shop_id,),
    )
