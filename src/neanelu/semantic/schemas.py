"""What `/api/search` answers: each hit with its fused score and why it matched."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class SearchProduct(BaseModel):
    id: str = Field(description="Shopify's numeric product id")
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None
    tags: list[str]
    deleted: bool
    min_price: Decimal | None = Field(description="lowest price of a live variant")


class TextReason(BaseModel):
    rank: int = Field(description="1-based rank among full-text matches")
    score: float = Field(description="ts_rank_cd of the document")
    terms: list[str] = Field(description="query lexemes found in the product")
    fields: list[str] = Field(description="where they were found")


class VectorReason(BaseModel):
    rank: int = Field(description="1-based rank among nearest vectors")
    similarity: float = Field(description="cosine similarity to the query")


class SearchHit(BaseModel):
    product: SearchProduct
    score: float = Field(description="reciprocal rank fusion score: sum of 1/(60 + rank)")
    matched: list[str] = Field(description="'text', 'vector' or both")
    text: TextReason | None
    vector: VectorReason | None


class SearchResponse(BaseModel):
    query: str
    model: str = Field(description="embedding model of the vector side")
    text_config: str = Field(description="text search configuration of the shop")
    took_ms: float
    vector_store: str = Field(description="where the vector side was answered: redis or postgres")
    hits: list[SearchHit]
