"""Hybrid search over one shop: full text and vectors ranked apart, fused by reciprocal rank, with
the catalog's filters applied to both sides. The query is embedded first (`embed_query`), outside
any transaction; the search itself runs in the caller's tenant transaction."""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

import numpy as np
import numpy.typing as npt
from psycopg import sql

from neanelu.db.pool import Conn
from neanelu.db.product_filters import product_clauses
from neanelu.db.rows import fetch_all, fetch_scalar, fetch_scalars
from neanelu.db.sql_files import load_sql
from neanelu.handles import queue_shop_warming
from neanelu.search import store
from neanelu.search.fusion import reciprocal_rank_fusion
from neanelu.search.hot import HotIndex
from neanelu.search.provider import EmbeddingProvider
from neanelu.telemetry import current_metrics, span

# Each side brings this many candidates per result asked for (at least CANDIDATES_MIN).
CANDIDATES_PER_RESULT = 4
CANDIDATES_MIN = 50
# HNSW on a shop's own partition: candidates looked at per query, and iterative scans so that
# filters do not starve the result (pgvector 0.8). Measured (docs/search.md, `make bench-search`,
# 1M embedding-shaped vectors over 20 shops): with m 16 / ef_construction 200, worst-shop
# recall@10 0.996 at 40 and 0.998 at 100 and at 400 in one build, 0.978 at 100-400 in another;
# with m 24 (migration 0017), 0.978 at 40 and 1.000 at 100, 200 and 400. p95 at 100 was about
# half of that at 400. The old 400 came from indexes built with ef_construction 64, whose graphs
# left nodes unreachable (0.70 at 100 then).
EF_SEARCH = 100
_WEIGHT_FIELDS = {
    "A": "title",
    "B": "vendor/type/tags",
    "C": "description/metafields",
    "D": "other",
}


@dataclass(frozen=True, slots=True)
class SearchFilter:
    status: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    tag: str | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    include_deleted: bool = False


@dataclass(frozen=True, slots=True)
class EmbeddedQuery:
    """A search's text with its vector under the provider's model. Built by `embed_query` before
    the caller opens its transaction: a remote provider's call (OpenAI: a network round trip,
    seconds when it is slow) must not hold a pooled connection in an open transaction."""

    text: str
    model: str
    dimension: int
    vector: npt.NDArray[np.float32]
    # perf_counter() when embedding began: the search's `took_ms` counts the embedding too.
    started: float


async def embed_query(provider: EmbeddingProvider, text: str) -> EmbeddedQuery:
    started = time.perf_counter()
    with span("search.embed_query"):
        embedded = await asyncio.to_thread(provider.embed, [text])
    return EmbeddedQuery(text, provider.model, provider.dimension, embedded.vectors[0], started)


@dataclass(frozen=True, slots=True)
class _VectorCandidate:
    product_shopify_id: int
    similarity: float


@dataclass(frozen=True, slots=True)
class _TextCandidate:
    product_shopify_id: int
    score: float
    terms: list[str]
    weights: list[str]


@dataclass(frozen=True, slots=True)
class _HitProduct:
    """A hit's product as the answer shows it (`asdict` keeps these names)."""

    id: int
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None
    tags: list[str] | None
    deleted: bool
    min_price: Decimal | None


def _sql(name: str) -> str:
    return load_sql(name, "neanelu.semantic")


def _by_score(candidate: tuple[int, float]) -> tuple[float, int]:
    product, score = candidate
    return (-score, product)


@dataclass(frozen=True, slots=True)
class TextMatch:
    rank: int
    score: float
    terms: tuple[str, ...]
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VectorMatch:
    rank: int
    similarity: float


@dataclass(slots=True)
class Hit:
    product_id: int
    score: float
    product: dict[str, Any] = field(default_factory=dict)
    text: TextMatch | None = None
    vector: VectorMatch | None = None

    @property
    def matched(self) -> list[str]:
        return [name for name, m in (("text", self.text), ("vector", self.vector)) if m]


@dataclass(frozen=True, slots=True)
class SearchResult:
    query: str
    model: str
    text_config: str
    hits: list[Hit]
    took_ms: float
    vector_store: str = "postgres"


def _filters(f: SearchFilter) -> tuple[sql.Composable, list[Any]]:
    clauses, params = product_clauses(
        include_deleted=f.include_deleted,
        status=f.status,
        vendor=f.vendor,
        product_type=f.product_type,
        tag=f.tag,
        table="p",
    )
    if f.price_min is not None or f.price_max is not None:
        # Some live variant within the range: the product can be bought at such a price.
        clauses.append(
            sql.SQL(
                "EXISTS (SELECT 1 FROM variants v WHERE v.shop_id = p.shop_id "
                "AND v.product_shopify_id = p.shopify_id AND v.deleted_at IS NULL "
                "AND v.price >= coalesce(%s, v.price) AND v.price <= coalesce(%s, v.price))"
            )
        )
        params.extend([f.price_min, f.price_max])
    return (sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("true")), params


_ITERATIVE_SCANS: bool | None = None


async def _iterative_scans(conn: Conn) -> bool:
    """pgvector 0.8 scans an HNSW index on until a filtered query has its k rows; older releases
    (PostgreSQL 16's packages often carry 0.6) reject the setting, and there a filtered search may
    return fewer than k neighbours (the text side still fills the fused list). Asked once a process:
    every connection of a process talks to the same database."""
    global _ITERATIVE_SCANS
    if _ITERATIVE_SCANS is None:
        found = await fetch_scalar(
            conn,
            bool,
            "SELECT string_to_array(extversion, '.')::int[] >= ARRAY[0, 8] FROM pg_extension "
            "WHERE extname = 'vector'",
        )
        _ITERATIVE_SCANS = bool(found)
    return _ITERATIVE_SCANS


async def _vector_side(
    conn: Conn, shop_id: UUID, model: str, vector: str, dimension: int, f: SearchFilter, k: int
) -> list[tuple[int, float]]:
    where, params = _filters(f)
    typ = sql.SQL("vector({})").format(sql.Literal(dimension))
    # Model and dimension as literals: the HNSW indexes are partial per model, and a generic
    # (prepared) plan over parameters could not prove their predicate and would not use them.
    query = sql.SQL(_sql("vector_candidates.sql")).format(
        t=typ, w=where, m=sql.Literal(model), d=sql.Literal(dimension)
    )
    await conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(EF_SEARCH)))
    if await _iterative_scans(conn):
        await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
    # Never prepared: after five runs psycopg prepares a statement and PostgreSQL may then keep a
    # generic plan, one not made for this shop's partition (measured on 1M vectors over 20 shops:
    # p50 31-42 ms on the largest shops prepared, 6-8 ms planned each time; planning is ~0.3 ms).
    found = await fetch_all(
        conn, _VectorCandidate, query, [vector, shop_id, *params, vector, k], prepare=False
    )
    rows = [(int(r.product_shopify_id), float(r.similarity)) for r in found]
    # relaxed_order may hand back neighbours slightly out of order: the ranks are ours.
    return sorted(rows, key=_by_score)


async def _text_side(
    conn: Conn, shop_id: UUID, config: str, text: str, f: SearchFilter, k: int
) -> list[_TextCandidate]:
    where, params = _filters(f)
    deleted = sql.SQL("true") if f.include_deleted else sql.SQL("NOT d.deleted")
    query = sql.SQL(_sql("text_candidates.sql")).format(deleted=deleted, w=where)
    found = await fetch_all(
        conn, _TextCandidate, query, [config, text, config, text, shop_id, *params, k]
    )
    return [
        _TextCandidate(int(r.product_shopify_id), float(r.score), list(r.terms), list(r.weights))
        for r in found
    ]


async def _products(conn: Conn, shop_id: UUID, ids: list[int]) -> dict[int, dict[str, Any]]:
    found = await fetch_all(
        conn,
        _HitProduct,
        "SELECT p.shopify_id AS id, p.handle, p.title, p.vendor, p.product_type, p.status, "
        "p.tags, p.deleted_at IS NOT NULL AS deleted, (SELECT min(v.price) FROM variants v "
        "WHERE v.shop_id = p.shop_id AND v.product_shopify_id = p.shopify_id "
        "AND v.deleted_at IS NULL) AS min_price "
        "FROM products p WHERE p.shop_id = %s AND p.shopify_id = ANY(%s)",
        (shop_id, ids),
    )
    return {int(r.id): asdict(r) for r in found}


async def hybrid_search(
    conn: Conn,
    query: EmbeddedQuery,
    shop_id: UUID,
    filters: SearchFilter,
    *,
    limit: int = 20,
    hot: HotIndex | None = None,
) -> SearchResult:
    """With `hot`, the vector side comes from Redis when the shop is loaded there and the search
    has no catalog filter (Redis holds vectors only); otherwise, or when Redis cannot answer,
    from PostgreSQL. Either way the answer has the same shape."""
    text = query.text
    k = max(CANDIDATES_MIN, CANDIDATES_PER_RESULT * limit)
    with span("search.query", {"neanelu.shop_id": str(shop_id)}):
        vector = store.vector_literal(query.vector)
        config = await store.text_config(conn, shop_id)
        by_vector = None
        if hot is not None and _unfiltered(filters):
            by_vector = await hot.knn(shop_id, query.vector, k)
            if by_vector is not None:
                by_vector = await _live(conn, shop_id, by_vector)
            elif hot.take_warm_request(shop_id):
                # A searched shop is an active one: loaded into Redis for the next searches.
                await queue_shop_warming(conn, shop_id)
        vector_store = "postgres" if by_vector is None else "redis"
        if by_vector is None:
            by_vector = await _vector_side(
                conn, shop_id, query.model, vector, query.dimension, filters, k
            )
        by_text = await _text_side(conn, shop_id, config, text, filters, k)
        fused = reciprocal_rank_fusion(
            {
                "text": [r.product_shopify_id for r in by_text],
                "vector": [product for product, _ in by_vector],
            }
        )[:limit]
        text_info = {r.product_shopify_id: r for r in by_text}
        vector_scores = dict(by_vector)
        products = await _products(conn, shop_id, [item for item, _, _ in fused])
    hits: list[Hit] = []
    for item, score, ranks in fused:
        hit = Hit(item, score, products.get(item, {"id": item}))
        if "text" in ranks:
            matched = text_info[item]
            fields = tuple(_WEIGHT_FIELDS.get(w, w) for w in matched.weights)
            hit.text = TextMatch(ranks["text"], matched.score, tuple(matched.terms), fields)
        if "vector" in ranks:
            hit.vector = VectorMatch(ranks["vector"], vector_scores[item])
        hits.append(hit)
    took = time.perf_counter() - query.started
    current_metrics().search_seconds.labels(vector_store).observe(took)
    return SearchResult(text, query.model, config, hits, round(took * 1000, 2), vector_store)


def _unfiltered(f: SearchFilter) -> bool:
    return f == SearchFilter() or f == SearchFilter(include_deleted=True)


async def _live(
    conn: Conn, shop_id: UUID, found: list[tuple[int, float]]
) -> list[tuple[int, float]]:
    """Redis candidates still live in the catalog (a deletion not yet processed drops out)."""
    live = set(
        await fetch_scalars(
            conn,
            int,
            "SELECT shopify_id FROM products WHERE shop_id = %s AND shopify_id = ANY(%s) "
            "AND deleted_at IS NULL",
            (shop_id, [p for p, _ in found]),
        )
    )
    return [(p, s) for p, s in found if p in live]
