"""A product's searchable text: title; vendor, type, tags; selected metafields; the description
without HTML. The same fields in the same order every time, so the hash moves only with content."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from neanelu.search.text import DocumentText, document_text, strip_html

PRODUCT_COLUMNS = (
    "shopify_id, title, vendor, product_type, tags, description, metafields, deleted_at IS NOT NULL"
)


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


def product_text(row: Sequence[Any], metafield_keys: Sequence[str], max_tokens: int) -> ProductText:
    """From a row of PRODUCT_COLUMNS."""
    shopify_id, title, vendor, product_type, tags, description, metafields, deleted = row
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
    return ProductText(int(shopify_id), bool(deleted), text)
