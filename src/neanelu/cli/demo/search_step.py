"""The demo's search step, after the sync and its webhooks: the vectors that the full sync's
embedding run builds, a few searches through the read API (`GET /api/search` with the shop's API
key, as a client calls it), and freshness: a product retitled in the emulator, timed from the
change until a search for its new title answers that product first."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from psycopg_pool import AsyncConnectionPool
from rich.table import Table

from neanelu.cli.demo.bars import progress_bars
from neanelu.cli.demo.supervise import DemoFailed
from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_scalar
from neanelu.shops.service import issue_api_key

# How long the demo waits for the sync's embedding run before it searches: a catalog that takes
# longer goes on embedding in the background, and the demo says how far it got.
EMBED_WAIT_S = 120.0
FRESH_TARGET_S = 10.0
FRESH_TIMEOUT_S = 60.0
QUERIES = ("handmade ceramic mug", "warm blanket for winter", "vintage leather backpack")
FRESH_TITLE = "Amber glass lantern for the garden"
SHOWN_HITS = 3

Pool = AsyncConnectionPool[Conn]
# Sets a product's title in the emulator (which then sends its webhook).
Retitle = Callable[[int, str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ShownSearch:
    query: str
    took_ms: float
    vector_store: str
    hits: list[dict[str, Any]]  # the API's hits, best first


@dataclass(frozen=True, slots=True)
class SearchFigures:
    products: int
    embedded: int  # products with a vector when the searches ran
    run_completed: bool  # the full sync's embedding run had finished by then
    embed_s: float  # how long the demo waited for it
    searches: list[ShownSearch]
    fresh_product: int
    fresh_s: float | None  # change in the emulator -> first in a search for its new title
    fresh_matched: list[str]  # which sides found it then: text, vector

    @property
    def ok(self) -> bool:
        """Found at all: the 10 s target is a figure the report marks, not the verdict (a
        loaded machine is slower, not wrong)."""
        return self.fresh_s is not None


async def _count(conn: Conn, query: str) -> int:
    return await fetch_scalar(conn, int, query) or 0


async def _embedding_state(pool: Pool, shop_id: UUID) -> tuple[int, int, bool]:
    async with tenant_scope(pool, shop_id) as conn:
        products = await _count(conn, "SELECT count(*) FROM products WHERE deleted_at IS NULL")
        # Live products only: the run may have embedded one that a webhook deleted since.
        embedded = await _count(
            conn,
            "SELECT count(DISTINCT e.product_shopify_id) FROM embeddings e JOIN products p "
            "ON p.shop_id = e.shop_id AND p.shopify_id = e.product_shopify_id "
            "WHERE p.deleted_at IS NULL",
        )
        done = await _count(
            conn,
            "SELECT count(*) FROM embedding_runs WHERE source = 'full_sync' "
            "AND status = 'completed'",
        )
    return products, embedded, done > 0


async def wait_for_vectors(pool: Pool, shop_id: UUID) -> tuple[int, int, bool, float]:
    """Follow the full sync's embedding run (a bar of products with a vector) until it completes
    or `EMBED_WAIT_S` passes."""
    started = time.monotonic()
    with progress_bars() as progress:
        task = progress.add_task("embedded", total=None, rate="")
        first: int | None = None
        while True:
            products, embedded, done = await _embedding_state(pool, shop_id)
            first = embedded if first is None else first
            elapsed = time.monotonic() - started
            rate = (embedded - first) / elapsed if elapsed > 0 else 0.0
            progress.update(task, completed=embedded, total=products, rate=f"{rate:,.0f} /s")
            if done or elapsed > EMBED_WAIT_S:
                return products, embedded, done, elapsed
            await asyncio.sleep(1.0)


async def search(http: httpx.AsyncClient, api_url: str, key: str, query: str) -> ShownSearch:
    response = await http.get(
        f"{api_url}/api/search",
        params={"q": query, "limit": 10},
        headers={"Authorization": f"Bearer {key}"},
    )
    if response.status_code != 200:
        raise DemoFailed(
            f"GET /api/search?q={query!r}: HTTP {response.status_code} {response.text[:200]}"
        )
    body = response.json()
    return ShownSearch(query, float(body["took_ms"]), str(body["vector_store"]), list(body["hits"]))


async def measure_freshness(
    http: httpx.AsyncClient,
    api_url: str,
    key: str,
    retitle: Retitle,
    product_id: int,
) -> tuple[float | None, list[str]]:
    """Retitle the product in the emulator (its webhook follows), then search for the new title
    until the product comes first; seconds since the change, and the sides that matched."""
    await retitle(product_id, FRESH_TITLE)
    changed = time.monotonic()
    while time.monotonic() - changed < FRESH_TIMEOUT_S:
        found = await search(http, api_url, key, FRESH_TITLE.lower())
        if found.hits and found.hits[0]["product"]["id"] == str(product_id):
            return time.monotonic() - changed, list(found.hits[0]["matched"])
        await asyncio.sleep(0.2)
    return None, []


async def run_search_step(
    pool: Pool,
    http: httpx.AsyncClient,
    api_url: str,
    shop_id: UUID,
    product_id: int,
    retitle: Retitle,
) -> SearchFigures:
    products, embedded, done, waited = await wait_for_vectors(pool, shop_id)
    async with tenant_scope(pool, shop_id) as conn:
        key = await issue_api_key(conn, shop_id)
    shown = [await search(http, api_url, key, q) for q in QUERIES]
    fresh_s, matched = await measure_freshness(http, api_url, key, retitle, product_id)
    return SearchFigures(
        products=products,
        embedded=embedded,
        run_completed=done,
        embed_s=waited,
        searches=shown,
        fresh_product=product_id,
        fresh_s=fresh_s,
        fresh_matched=matched,
    )


def search_tables(figures: SearchFigures) -> list[Table]:
    tables = []
    for shown in figures.searches:
        table = Table(
            title=f"search {shown.query!r} ({shown.took_ms:.1f} ms, vectors from "
            f"{shown.vector_store})"
        )
        for column in ("#", "title", "matched", "score"):
            table.add_column(column)
        for n, hit in enumerate(shown.hits[:SHOWN_HITS], start=1):
            table.add_row(
                str(n),
                str(hit["product"]["title"]),
                " + ".join(hit["matched"]),
                f"{float(hit['score']):.4f}",
            )
        tables.append(table)
    return tables


def freshness_line(figures: SearchFigures) -> str:
    coverage = (
        f"{figures.embedded:,} of {figures.products:,} products had a vector "
        f"({'run completed' if figures.run_completed else 'the run goes on in the background'}, "
        f"waited {figures.embed_s:.0f} s)"
    )
    if figures.fresh_s is None:
        fresh = (
            f"[red]product {figures.fresh_product} retitled {FRESH_TITLE!r}: not found first "
            f"within {FRESH_TIMEOUT_S:.0f} s[/red]"
        )
    else:
        mark = "green" if figures.fresh_s <= FRESH_TARGET_S else "yellow"
        fresh = (
            f"[{mark}]product {figures.fresh_product} retitled {FRESH_TITLE!r}: found first "
            f"{figures.fresh_s:.1f} s after the change (target {FRESH_TARGET_S:.0f} s), by "
            f"{' + '.join(figures.fresh_matched)}[/{mark}]"
        )
    return f"{coverage}\n{fresh}"
