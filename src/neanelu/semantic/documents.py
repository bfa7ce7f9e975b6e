"""A product's searchable text: title; vendor, type, tags; selected metafields; the description
without HTML. The same fields in the same order every time, so the hash moves only with content."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from neanelu.search.text import DocumentText, document_text, strip_html

PRODUCT_COLUMNS = sql.SQL(
    "shopify_id, title, vendor, product_type, tags, description, metafields, "
    "deleted_at IS NOT NULL AS deleted"
)


@dataclass(frozen=True, slots=True)
class ProductSource:
    """A product as PRODUCT_COLUMNS reads it."""

    shopify_id: int
    title: str | None
    vendor: str | None
    product_type: str | None
    tags: list[str] | None
    description: str | None
    metafields: Any
    deleted: bool


@dataclass(frozen=True, slots=True)
class ProductText:
    shopify_id: int
    deleted: bool
    text: DocumentText


def _metafield_value(value: Any) -> str:
    if isinstance(value, dict):
        value = value.get("value")
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def product_text(row: ProductSource, metafield_keys: Sequence[str], max_tokens: int) -> ProductText:
    """From a row of PRODUCT_COLUMNS."""
    title, vendor, product_type, tags = row.title, row.vendor, row.product_type, row.tags
    description, metafields = row.description, row.metafields
    metas = metafields if isinstance(metafields, dict) else {}
    body = [
        f"{key.rsplit('.', 1)[-1]}: {_metafield_value(metas[key])}"
        for key in metafield_keys
        if _metafield_value(metas.get(key))
    ]
    body.append(strip_html(description or ""))
    text = document_text(
        title,
        [("vendor", vendor), ("type", product_type), ("tags", ", ".join(tags or ()))],
        body,
        max_tokens=max_tokens,
    )
    return ProductText(int(row.shopify_id), bool(row.deleted), text)
