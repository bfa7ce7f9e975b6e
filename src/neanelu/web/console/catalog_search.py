"""The catalog page's search box: the same hybrid search as `GET /api/search`, for one shop.

The console reads across shops through its own audited functions; a search reads the shop's
embeddings and documents under that shop's tenant scope instead (row-level security applies as
for the shop's own API calls), after the page has checked the operator's session and the shop.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID

from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.search.provider import EmbeddingError
from neanelu.search.providers import provider_for
from neanelu.semantic.hotcache import hot_index_for
from neanelu.semantic.search import Hit, SearchFilter, embed_query, hybrid_search
from neanelu.web.console.reads import ProductFilter

LIMIT = 25


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the page shows: the hits and how they were found, or why there are none."""

    hits: list[Hit] = field(default_factory=list)
    model: str = ""
    vector_store: str = ""
    took_ms: float = 0.0
    error: str | None = None


async def by_meaning(rt: Runtime, shop_id: UUID, q: str, filters: ProductFilter) -> Outcome:
    text = q.strip()
    if not text:
        return Outcome(error="The search needs more than spaces.")
    if "\x00" in text:
        return Outcome(error="The search cannot contain NUL characters.")
    try:
        provider = await asyncio.to_thread(provider_for, rt.settings)
    except EmbeddingError as exc:
        # The words side alone would look like a complete answer; say what is missing instead.
        return Outcome(error=f"Search by meaning is not available: {exc}")
    wanted = SearchFilter(status=filters.status, vendor=filters.vendor)
    try:
        embedded = await embed_query(provider, text)
    except EmbeddingError as exc:
        # A remote provider refused or could not embed the query.
        return Outcome(error=f"Search by meaning is not available: {exc}")
    # No idle time: an operator's search does not make the shop an active one (no seen mark,
    # no loading into Redis asked).
    async with tenant_scope(rt.pool, shop_id) as conn:
        result = await hybrid_search(
            conn, embedded, shop_id, wanted, limit=LIMIT, hot=hot_index_for(rt.redis, provider)
        )
    return Outcome(result.hits, result.model, result.vector_store, result.took_ms)
