"""`neanelu shops list`: the shops and their token state; `neanelu shops owner-app ...`: other
apps' tokens for their app-owned metafields."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import typer
from pydantic import SecretStr
from rich.table import Table

from neanelu.cli.common import (
    ShopOption,
    console,
    err_console,
    installed_shop_id,
    open_cli_runtime,
    run,
    settings_from,
    shop_domain,
)
from neanelu.config import Settings
from neanelu.db.pool import Conn, global_scope, tenant_scope
from neanelu.shops import owner_apps
from neanelu.shops import repository as shops
from neanelu.vault import TokenVault

app = typer.Typer(help="Shops installed here.", no_args_is_help=True)
owner_app = typer.Typer(
    help="Other apps whose app-owned metafields (app--{id}--*) full syncs read with their token.",
    no_args_is_help=True,
)
app.add_typer(owner_app, name="owner-app")

TOKEN_ENV = "NEANELU_OWNER_APP_TOKEN"  # noqa: S105 - the variable's name, not a token
MAX_TOKEN = 512
AppIdOption = Annotated[
    int,
    typer.Option("--app-id", min=1, help="The owner app's numeric API client id (app--{id})"),
]


def _read_token() -> SecretStr:
    """From NEANELU_OWNER_APP_TOKEN, piped stdin, or a hidden prompt: never a command-line
    argument, which other users of the machine can read in the process list."""
    value = os.environ.get(TOKEN_ENV)
    if value is None:
        if sys.stdin.isatty():
            value = typer.prompt("owner app access token", hide_input=True)
        else:
            value = sys.stdin.readline()
    value = value.strip()
    if not value or len(value) > MAX_TOKEN or any(c.isspace() for c in value):
        err_console.print(
            f"[red]token: expected one word of 1-{MAX_TOKEN} characters "
            f"(from {TOKEN_ENV}, stdin or the prompt)[/red]"
        )
        raise typer.Exit(2)
    return SecretStr(value)


@asynccontextmanager
async def _shop_scope(settings: Settings, domain: str) -> AsyncIterator[tuple[Conn, UUID]]:
    """One transaction in the shop's tenant scope."""
    async with open_cli_runtime(settings, name="neanelu-shops", pool_max=2) as rt:
        shop_id = await installed_shop_id(rt.pool, domain)
        async with tenant_scope(rt.pool, shop_id) as conn:
            yield conn, shop_id


async def _set(
    settings: Settings, domain: str, api_client_id: int, name: str, token: SecretStr | None
) -> None:
    vault = TokenVault.from_settings(settings)
    async with _shop_scope(settings, domain) as (conn, shop_id):
        await owner_apps.put(conn, vault, shop_id, api_client_id, name=name, token=token)


async def _remove(settings: Settings, domain: str, api_client_id: int) -> bool:
    async with _shop_scope(settings, domain) as (conn, _):
        return await owner_apps.remove(conn, api_client_id)


async def _list(settings: Settings, domain: str) -> list[owner_apps.OwnerAppRow]:
    async with _shop_scope(settings, domain) as (conn, _):
        return await owner_apps.list_apps(conn)


async def _all_shops(settings: Settings) -> list[shops.ShopRow]:
    async with open_cli_runtime(settings, name="neanelu-shops", pool_max=1) as rt:
        async with global_scope(rt.pool) as conn:
            return await shops.list_all(conn)


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "-"
    minutes = int((at - now).total_seconds() // 60)
    relative = f"in {minutes} min" if minutes >= 0 else f"{-minutes} min ago"
    return f"{at:%Y-%m-%d %H:%M} UTC ({relative})"


def token_state(row: shops.ShopRow, now: datetime) -> str:
    """What the token sweep and the jobs will find: the one column an operator looks at."""
    if row.status == shops.NEEDS_REAUTH:
        return "refresh refused: the merchant must open the app again"
    if not row.has_access_token:
        return "none"
    expires = row.access_token_expires_at
    if expires is None:
        return "non-expiring"
    if not row.has_refresh_token:
        return "expired, no refresh token" if expires <= now else "expiring, no refresh token"
    return "expired, refreshed on next use" if expires <= now else "valid, refreshed ahead"


@app.command("list")
def list_shops(ctx: typer.Context) -> None:
    """The shops installed here with their status and token state (never a token)."""
    rows = run(_all_shops(settings_from(ctx)))
    now = datetime.now(UTC)
    table = Table(title="shops")
    for column in ("domain", "status", "token", "access token expires", "last full sync"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.domain,
            r.status,
            token_state(r, now),
            _when(r.access_token_expires_at, now),
            _when(r.last_full_sync_at, now),
        )
    console.print(table)


@owner_app.command("set")
def set_owner_app(
    ctx: typer.Context,
    shop: ShopOption,
    app_id: AppIdOption,
    name: Annotated[str, typer.Option(help="A label for people")] = "",
    no_token: Annotated[
        bool,
        typer.Option(
            "--no-token",
            help="Register the app without a token: syncs report its metafields unavailable "
            "and keep what is stored of them",
        ),
    ] = False,
) -> None:
    """Register another app's token for the shop (read from NEANELU_OWNER_APP_TOKEN, stdin or a
    hidden prompt); full syncs then read its app-owned metafields with it."""
    domain = shop_domain(shop)
    try:
        owner_apps.validate(app_id, name)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    token = None if no_token else _read_token()
    run(_set(settings_from(ctx), domain, app_id, name, token))
    state = "without a token (reported unavailable)" if token is None else "with its token"
    console.print(f"owner app {app_id} registered for {domain} {state}")


@owner_app.command("remove")
def remove_owner_app(ctx: typer.Context, shop: ShopOption, app_id: AppIdOption) -> None:
    """Forget an owner app: the next complete full sync no longer keeps its metafields."""
    domain = shop_domain(shop)
    if not run(_remove(settings_from(ctx), domain, app_id)):
        err_console.print(f"[red]--app-id: {app_id} is not registered for {domain}[/red]")
        raise typer.Exit(1)
    console.print(f"owner app {app_id} removed from {domain}")


@owner_app.command("list")
def list_owner_apps(ctx: typer.Context, shop: ShopOption) -> None:
    """The shop's owner apps and whether each has a token (never the token itself)."""
    domain = shop_domain(shop)
    rows = run(_list(settings_from(ctx), domain))
    table = Table(title=f"owner apps of {domain}")
    for column in ("api client id", "namespace", "name", "token", "updated"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            str(r.api_client_id),
            f"app--{r.api_client_id}",
            r.name,
            "sealed" if r.token is not None else "none (unavailable)",
            f"{r.updated_at:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
