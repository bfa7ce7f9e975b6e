"""What the read API answers. Shopify ids are strings: they exceed JavaScript's 2^53."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field


class SelectedOption(BaseModel):
    name: str
    value: str


class Variant(BaseModel):
    id: str = Field(description="Shopify's numeric variant id")
    sku: str | None
    title: str | None
    price: Decimal | None
    compare_at_price: Decimal | None
    barcode: str | None
    position: int | None
    inventory_quantity: int | None
    inventory_item_id: str | None
    selected_options: list[SelectedOption]
    updated_at: datetime | None


class ProductSummary(BaseModel):
    id: str = Field(description="Shopify's numeric product id")
    handle: str | None
    title: str | None
    vendor: str | None
    product_type: str | None
    status: str | None = Field(description="ACTIVE, DRAFT or ARCHIVED")
    tags: list[str]
    updated_at: datetime | None
    deleted: bool


class Product(ProductSummary):
    description: str | None
    metafields: dict[str, Any]
    created_at: datetime | None
    variants: list[Variant]


class ProductPage(BaseModel):
    items: list[ProductSummary]
    next_cursor: str | None = Field(
        description="Pass as `after` for the next page; null on the last page"
    )
