"""`neanelu search`, `search-embed`, `search-language`, `search-partition`: semantic search from
the terminal, under the named shop's tenant."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, TypeVar
from uuid import UUID

import psycopg
import typer
from psycopg_pool import AsyncConnectionPool
from redis.asyncio import Redis
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
from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.services import resolve_services
from neanelu.search import store
from neanelu.search.provider import EmbeddingError, EmbeddingProvider
from neanelu.search.providers import provider_for
from neanelu.semantic import reach
from neanelu.semantic.hotcache import hot_index_for, warm_shop
from neanelu.semantic.routes import to_response
from neanelu.semantic.search import SearchFilter, SearchResult, embed_query, hybrid_search
from neanelu.semantic.service import RunFigures, embed_products

T = TypeVar("T")


async def _with_shop(
    settings: Settings,
    shop: str,
    work: Callable[[AsyncConnectionPool[Conn], Redis, UUID], Awaitable[T]],
) -> T:
    async with open_cli_runtime(settings, name="neanelu-search", pool_max=2) as rt:
        return await work(rt.pool, rt.redis, await installed_shop_id(rt.pool, shop_domain(shop)))


def _provider(settings: Settings) -> EmbeddingProvider:
    try:
        return provider_for(settings)
    except EmbeddingError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="what to look for")],
    shop: ShopOption,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 10,
    status: Annotated[str | None, typer.Option(help="ACTIVE, DRAFT or ARCHIVED")] = None,
    vendor: str | None = None,
    product_type: Annotated[str | None, typer.Option("--type")] = None,
    tag: str | None = None,
    price_min: Annotated[str | None, typer.Option(help="lowest variant price")] = None,
    price_max: Annotated[str | None, typer.Option(help="highest variant price")] = None,
    include_deleted: bool = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON answer")] = False,
) -> None:
    """Search a shop's catalog by meaning and by words; each hit says why it matched."""
    settings = settings_from(ctx)
    if not query.strip():
        err_console.print("[red]the query must contain more than spaces[/red]")
        raise typer.Exit(2)
    if status is not None and status not in ("ACTIVE", "DRAFT", "ARCHIVED"):
        err_console.print("[red]--status must be ACTIVE, DRAFT or ARCHIVED[/red]")
        raise typer.Exit(2)
    filters = SearchFilter(
        status=status,
        vendor=vendor,
        product_type=product_type,
        tag=tag,
        price_min=_price(price_min, "--price-min"),
        price_max=_price(price_max, "--price-max"),
        include_deleted=include_deleted,
    )
    provider = _provider(settings)

    async def work(pool: AsyncConnectionPool[Conn], redis: Redis, shop_id: UUID) -> SearchResult:
        embedded = await embed_query(provider, query)
        async with tenant_scope(pool, shop_id) as conn:
            return await hybrid_search(
                conn,
                embedded,
                shop_id,
                filters,
                limit=limit,
                hot=hot_index_for(redis, provider, settings.search_hot_idle_s),
            )

    result = run(_with_shop(settings, shop, work))
    if as_json:
        console.print_json(to_response(result).model_dump_json())
        return
    table = Table(
        title=f"{len(result.hits)} hit(s) for {query!r} ({result.took_ms} ms, vectors from "
        f"{result.vector_store})"
    )
    for column in ("#", "score", "id", "title", "matched", "why"):
        table.add_column(column)
    for n, hit in enumerate(result.hits, start=1):
        why = []
        if hit.text is not None:
            why.append(
                f"text #{hit.text.rank}: {', '.join(hit.text.terms)} in "
                f"{', '.join(hit.text.fields)}"
            )
        if hit.vector is not None:
            why.append(f"vector #{hit.vector.rank}: cosine {hit.vector.similarity:.3f}")
        table.add_row(
            str(n),
            f"{hit.score:.4f}",
            str(hit.product_id),
            str(hit.product.get("title") or ""),
            "+".join(hit.matched),
            "; ".join(why),
        )
    console.print(table)


def _price(value: str | None, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        price = Decimal(value)
    except ArithmeticError:
        price = Decimal("NaN")
    if not price.is_finite() or price < 0:
        err_console.print(f"[red]{name} must be a non-negative number[/red]")
        raise typer.Exit(2)
    return price


def search_embed(ctx: typer.Context, shop: ShopOption) -> None:
    """Embed the shop's new and changed products now (what the jobs do), and say what it did."""
    settings = settings_from(ctx)
    provider = _provider(settings)

    async def work(pool: AsyncConnectionPool[Conn], redis: Redis, shop_id: UUID) -> RunFigures:
        return await embed_products(
            pool,
            provider,
            shop_id,
            source="manual",
            metafield_keys=settings.search_metafields,
            hot=hot_index_for(redis, provider, settings.search_hot_idle_s),
        )

    f = run(_with_shop(settings, shop, work))
    console.print(
        f"queued {f.queued}, embedded {f.embedded}, skipped {f.skipped} unchanged, removed "
        f"{f.removed}, {f.tokens} tokens ({provider.name}: {provider.model})"
    )


def search_language(
    ctx: typer.Context,
    config: Annotated[str, typer.Argument(help="a text search configuration: simple, romanian…")],
    shop: ShopOption,
) -> None:
    """Set the shop's full-text language; documents are rebuilt by the next embedding run."""
    settings = settings_from(ctx)

    async def work(pool: AsyncConnectionPool[Conn], redis: Redis, shop_id: UUID) -> None:
        async with tenant_scope(pool, shop_id) as conn:
            await store.set_text_config(conn, shop_id, config)

    try:
        run(_with_shop(settings, shop, work))
    except psycopg.errors.UndefinedObject:
        err_console.print(
            f"[red]no text search configuration named {config!r} on this server[/red]"
        )
        raise typer.Exit(2) from None
    console.print(f"text search configuration set to {config}; run `neanelu search-embed`")


def search_partition(
    ctx: typer.Context,
    shop: ShopOption,
    maintenance_work_mem: Annotated[str, typer.Option(help="memory for the HNSW build")] = "1GB",
    min_reach: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="the share of sampled stored vectors a search must find by themselves",
        ),
    ] = reach.MIN_REACH,
    rebuilds: Annotated[
        int, typer.Option(min=0, help="builds again of an index that reaches less")
    ] = 2,
    sample: Annotated[int, typer.Option(min=1, help="stored vectors searched per model")] = (
        reach.SAMPLE
    ),
) -> None:
    """Give a large shop its own vector partition with an HNSW index per model (owner role),
    each index checked for how much of the shop a search reaches."""
    settings = settings_from(ctx)
    services = resolve_services(settings)

    async def work(
        pool: AsyncConnectionPool[Conn], redis: Redis, shop_id: UUID
    ) -> reach.PartitionBuild:
        # DDL runs as the owner role, outside the app role's reach.
        async with await psycopg.AsyncConnection.connect(
            services.postgres_owner, autocommit=True
        ) as owner:
            return await reach.build_own_partition(
                owner,
                shop_id,
                maintenance_work_mem,
                min_reach=min_reach,
                rebuilds=rebuilds,
                sample=sample,
            )

    try:
        built = run(_with_shop(settings, shop, work))
    except psycopg.errors.InvalidParameterValue as exc:
        err_console.print(f"[red]--maintenance-work-mem: {exc}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"shop {shop}: vectors in partition {built.partition}, HNSW index per model in place"
    )
    for r in built.reach:
        console.print(
            f"  {r.model} ({r.dimension}): {r.fraction:.2%} of {r.sampled:,} sampled vectors "
            "found by themselves"
        )
    if built.rebuilds:
        console.print(f"  built again {built.rebuilds} time(s) to reach {min_reach:.2%}")
    short = built.short(min_reach)
    if short:
        models = ", ".join(r.model for r in short)
        err_console.print(
            f"[red]{models}: the index reaches less than {min_reach:.2%} of the shop after"
            f" {built.rebuilds} rebuild(s): searches can miss products in the unreached part"
            " (run the command again to build anew)[/red]"
        )
        raise typer.Exit(1)


def search_warm(ctx: typer.Context, shop: ShopOption) -> None:
    """Load the shop's vectors into the Redis hot cache (needs Redis with the query engine)."""
    settings = settings_from(ctx)
    provider = _provider(settings)

    async def work(pool: AsyncConnectionPool[Conn], redis: Redis, shop_id: UUID) -> int | None:
        hot = hot_index_for(redis, provider, settings.search_hot_idle_s)
        return await warm_shop(pool, hot, shop_id, provider.model)

    loaded = run(_with_shop(settings, shop, work))
    if loaded is None:
        err_console.print(
            "[red]the vectors did not reach Redis (no query engine, or down, or a write failed;"
            " the log says which): searches use PostgreSQL[/red]"
        )
        raise typer.Exit(1)
    if loaded == 0:
        console.print(
            f"shop {shop}: no embedded products yet (`neanelu search-embed`): searches use PostgreSQL"
        )
        return
    console.print(f"shop {shop}: {loaded} vector(s) loaded into the Redis hot cache")


def register(app: typer.Typer) -> None:
    app.command("search")(search)
    app.command("search-embed")(search_embed)
    app.command("search-language")(search_language)
    app.command("search-partition")(search_partition)
    app.command("search-warm")(search_warm)
