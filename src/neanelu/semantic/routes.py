"""`GET /api/search`: hybrid search over the caller's own catalog."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, status

from neanelu.db.pool import tenant_scope
from neanelu.search.provider import EmbeddingError
from neanelu.search.providers import provider_for
from neanelu.semantic.hotcache import hot_index_for
from neanelu.semantic.schemas import (
    SearchHit,
    SearchProduct,
    SearchResponse,
    TextReason,
    VectorReason,
)
from neanelu.semantic.search import Hit, SearchFilter, SearchResult, embed_query, hybrid_search
from neanelu.shops.auth import CurrentShop
from neanelu.web.deps import RuntimeDep

router = APIRouter(prefix="/api/search", tags=["search"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "bad query or filter"},
    401: {"description": "missing or invalid session token / API key"},
    503: {"description": "the embedding model is not available"},
}


def _text(value: str | None, name: str) -> str | None:
    if value is not None and "\x00" in value:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"{name} cannot contain NUL characters")
    return value


@router.get("", response_model=SearchResponse, responses=_ERRORS)
async def search(
    rt: RuntimeDep,
    shop: CurrentShop,
    q: Annotated[str, Query(min_length=1, max_length=500, description="what to look for")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    product_status: Annotated[
        Literal["ACTIVE", "DRAFT", "ARCHIVED"] | None, Query(alias="status")
    ] = None,
    vendor: Annotated[str | None, Query(max_length=255)] = None,
    product_type: Annotated[str | None, Query(max_length=255)] = None,
    tag: Annotated[str | None, Query(max_length=255)] = None,
    price_min: Annotated[Decimal | None, Query(ge=0, max_digits=20, decimal_places=4)] = None,
    price_max: Annotated[Decimal | None, Query(ge=0, max_digits=20, decimal_places=4)] = None,
    include_deleted: bool = False,
) -> SearchResponse:
    """Products of the caller's shop by meaning and by words, fused; each hit says why."""
    query = _text(q, "q")
    assert query is not None
    if not query.strip():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "q must contain more than spaces")
    if price_min is not None and price_max is not None and price_min > price_max:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "price_min is above price_max")
    filters = SearchFilter(
        status=product_status,
        vendor=_text(vendor, "vendor"),
        product_type=_text(product_type, "product_type"),
        tag=_text(tag, "tag"),
        price_min=price_min,
        price_max=price_max,
        include_deleted=include_deleted,
    )
    try:
        provider = await asyncio.to_thread(provider_for, rt.settings)
    except EmbeddingError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    try:
        embedded = await embed_query(provider, query)
    except EmbeddingError as exc:
        # A remote provider refused or could not embed the query (its message carries no key).
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    async with tenant_scope(rt.pool, shop.shop_id) as conn:
        result = await hybrid_search(
            conn,
            embedded,
            shop.shop_id,
            filters,
            limit=limit,
            hot=hot_index_for(rt.redis, provider, rt.settings.search_hot_idle_s),
        )
    return to_response(result)


def to_response(result: SearchResult) -> SearchResponse:
    return SearchResponse(
        query=result.query,
        model=result.model,
        text_config=result.text_config,
        took_ms=result.took_ms,
        vector_store=result.vector_store,
        hits=[_hit(h) for h in result.hits],
    )


def _hit(hit: Hit) -> SearchHit:
    p = hit.product
    return SearchHit(
        product=SearchProduct(
            id=str(hit.product_id),
            handle=p.get("handle"),
            title=p.get("title"),
            vendor=p.get("vendor"),
            product_type=p.get("product_type"),
            status=p.get("status"),
            tags=list(p.get("tags") or []),
            deleted=bool(p.get("deleted")),
            min_price=p.get("min_price"),
        ),
        score=hit.score,
        matched=hit.matched,
        text=None
        if hit.text is None
        else TextReason(
            rank=hit.text.rank,
            score=hit.text.score,
            terms=list(hit.text.terms),
            fields=list(hit.text.fields),
        ),
        vector=None
        if hit.vector is None
        else VectorReason(rank=hit.vector.rank, similarity=hit.vector.similarity),
    )
