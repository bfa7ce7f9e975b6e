"""Shopify ids -> numbers: the split that takes the common case must accept exactly what the full
check accepts, with the same number, and leave every refusal its reason."""

from __future__ import annotations

import pytest

from neanelu.ingest.bulk_lines import BadLine, gid_parser, owner_of

BIGGEST = (1 << 63) - 1


@pytest.mark.parametrize(
    ("kind", "gid", "number"),
    [
        ("ProductVariant", "gid://shopify/ProductVariant/123", 123),
        ("Product", "gid://shopify/Product/0007", 7),
        ("Product", f"gid://shopify/Product/{BIGGEST}", BIGGEST),
        ("Metafield", "gid://shopify/Metafield/9", 9),
        ("InventoryLevel", "gid://shopify/InventoryLevel/9001?inventory_item_id=9", 9001),
        ("InventoryLevel", "gid://shopify/InventoryLevel/9001", 9001),
    ],
)
def test_ids_read_as_their_number(kind: str, gid: str, number: int) -> None:
    assert gid_parser(kind)(gid) == number


@pytest.mark.parametrize(
    ("gid", "reason"),
    [
        ("gid://shopify/Product/", "malformed Product id"),
        ("gid://shopify/Product/12/3", "malformed Product id"),
        ("gid://shopify/Product/-1", "malformed Product id"),
        ("gid://shopify/Product/ 1", "malformed Product id"),
        ("gid://shopify/Product/1_0", "malformed Product id"),
        # Digits int() reads, but not ASCII ones.
        ("gid://shopify/Product/\u0663", "malformed Product id"),
        ("gid://shopify/Product/" + "9" * 20, "malformed Product id"),
        (f"gid://shopify/Product/{BIGGEST + 1}", "Product id out of range"),
        # The stem must be the whole head: a longer type name, another type, a prefix before it.
        ("gid://shopify/ProductX/1", "expected a Product id"),
        ("gid://shopify/Collection/1", "expected a Product id"),
        ("a/gid://shopify/Product/1", "expected a Product id"),
        ("", "expected a Product id"),
    ],
)
def test_anything_else_is_refused_with_its_reason(gid: str, reason: str) -> None:
    with pytest.raises(BadLine, match=f"^{reason}"):
        gid_parser("Product")(gid)


def test_a_query_string_is_dropped_whatever_the_type() -> None:
    # The split leaves it in the tail; the full check reads the number before it.
    assert gid_parser("Product")("gid://shopify/Product/9?x=1") == 9


def test_owner_kind_follows_the_parent_type() -> None:
    assert owner_of("gid://shopify/ProductVariant/5") == ("V", 5)
    assert owner_of("gid://shopify/Product/5") == ("P", 5)
    with pytest.raises(BadLine, match=r"^expected a Product id"):
        owner_of("gid://shopify/Collection/5")
