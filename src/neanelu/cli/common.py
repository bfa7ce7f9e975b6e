"""What every command shares: the settings built once, printed errors, the asyncio entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar
from uuid import UUID

import httpx
import typer
from psycopg_pool import AsyncConnectionPool
from rich.console import Console

from neanelu.config import Settings, SettingsError, load_settings
from neanelu.db.embedded import EmbeddedServiceError
from neanelu.db.pool import Conn, global_scope
from neanelu.db.services import resolve_services
from neanelu.runtime import Runtime, open_runtime
from neanelu.shopify.oauth import InvalidShopDomain, normalize_shop_domain
from neanelu.shops import repository as shops

# A command's own calls out (a token refresh, an embedding provider): bounded like the worker's.
CLI_HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def settings_from(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise RuntimeError("settings were not built by the root command")
    return settings


def build_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one red line and exit code 1."""
    try:
        return asyncio.run(coro)
    except EmbeddedServiceError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


@asynccontextmanager
async def open_cli_runtime(
    settings: Settings, *, name: str, pool_max: int
) -> AsyncIterator[Runtime]:
    """The process kernel for one command, opened once and closed when the command ends: the
    pool (as the application role, at most `pool_max` connections), Redis, the HTTP client and
    the vault, the same `Runtime` the API and the worker open."""
    async with open_runtime(
        settings,
        resolve_services(settings),
        name=name,
        pool_max=max(pool_max, settings.db_pool_min),
        http_timeout=CLI_HTTP_TIMEOUT,
    ) as runtime:
        yield runtime


def text_of(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


ShopOption = Annotated[str, typer.Option("--shop", help="The shop: name or name.myshopify.com")]


def shop_domain(shop: str) -> str:
    """`--shop` as a checked myshopify domain (a bare name gets the suffix)."""
    try:
        return normalize_shop_domain(shop if "." in shop else f"{shop}.myshopify.com")
    except InvalidShopDomain as exc:
        err_console.print(f"[red]--shop: {exc}[/red]")
        raise typer.Exit(2) from None


async def installed_shop_id(pool: AsyncConnectionPool[Conn], domain: str) -> UUID:
    async with global_scope(pool) as conn:
        row = await shops.get_by_domain(conn, domain)
    if row is None:
        err_console.print(f"[red]--shop: {domain} is not installed here[/red]")
        raise typer.Exit(2)
    return row.id
