"""The webhook payload decoders (no servers needed): what a good payload of each topic becomes, and
that a bad one is refused with a PayloadError naming the topic and the field that was wrong."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from neanelu.catalog.product_versions import (
    PayloadError,
    deleted_product_id,
    level_from_rest,
    product_from_rest,
)
from neanelu.shops.purge import RedactRequest
from neanelu.webhooks.tasks import _bulk_finish, _shopify_shop_id

EST = timezone(timedelta(hours=-5))


def rest_product(**changes: Any) -> dict[str, Any]:
    """A products/create|update payload in Shopify's REST shape (trimmed to what is decoded)."""
    product: dict[str, Any] = {
        "id": 632910392,
        "title": "IPod Nano - 8GB",
        "body_html": "<p>It's the small iPod.</p>",
        "vendor": "Apple",
        "product_type": "Cult Products",
        "handle": "ipod-nano",
        "status": "active",
        "tags": "Emotive, Flash Memory, ,MP3",
        "created_at": "2024-01-02T03:04:05-05:00",
        "updated_at": "2024-02-03T04:05:06-05:00",
        # Out of order on purpose: a variant's option1..3 follow the options' positions.
        "options": [{"name": "Color", "position": 2}, {"name": "Size", "position": 1}],
        "variants": [
            {
                "id": 808950810,
                "title": "M / Pink",
                "price": "199.00",
                "compare_at_price": None,
                "sku": "IPOD2008PINK",
                "barcode": "1234_pink",
                "position": 1,
                "inventory_item_id": 808950811,
                "inventory_quantity": 10,
                "option1": "M",
                "option2": "Pink",
                "option3": None,
                "created_at": "2024-01-02T03:04:05-05:00",
                "updated_at": "2024-02-03T04:05:06Z",
            }
        ],
    }
    product.update(changes)
    return product


def with_variant(**changes: Any) -> dict[str, Any]:
    product = rest_product()
    product["variants"][0].update(changes)
    return product


def refusal(decode: Any, payload: Any) -> str:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    with pytest.raises(PayloadError) as refused:
        decode(raw)
    return str(refused.value)


# products/create and products/update


def test_product_payload_decodes_into_the_full_syncs_column_meanings() -> None:
    record = product_from_rest(json.dumps(rest_product()).encode())
    assert record.shopify_id == 632910392
    assert record.handle == "ipod-nano"
    assert record.title == "IPod Nano - 8GB"
    assert record.vendor == "Apple"
    assert record.product_type == "Cult Products"
    assert record.status == "ACTIVE"  # uppercase, as GraphQL and the bulk files have it
    assert record.tags == ["Emotive", "Flash Memory", "MP3"]  # blanks dropped, spaces stripped
    assert record.description == "<p>It's the small iPod.</p>"
    assert record.shopify_created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=EST)
    assert record.shopify_updated_at == datetime(2024, 2, 3, 4, 5, 6, tzinfo=EST)
    [variant] = record.variants
    assert variant.shopify_id == 808950810
    assert variant.sku == "IPOD2008PINK"
    assert variant.title == "M / Pink"
    assert variant.price == Decimal("199.00")
    assert variant.compare_at_price is None
    assert variant.barcode == "1234_pink"
    assert variant.position == 1
    assert variant.inventory_quantity == 10
    assert variant.inventory_item_id == 808950811
    assert variant.selected_options == [
        {"name": "Size", "value": "M"},
        {"name": "Color", "value": "Pink"},
    ]
    assert variant.shopify_created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=EST)
    assert variant.shopify_updated_at == datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC)


def test_product_payload_with_only_the_required_fields() -> None:
    record = product_from_rest('{"id": 5, "updated_at": "2024-02-03T04:05:06+00:00"}')
    assert record.shopify_id == 5
    assert record.status is None
    assert record.tags == []
    assert record.variants == []
    assert record.shopify_created_at is None


@pytest.mark.parametrize(
    ("price", "expected"),
    [("19.50", Decimal("19.50")), (19.5, Decimal("19.5")), (7, Decimal(7)), ("", None)],
)
def test_variant_prices_as_strings_or_numbers(price: Any, expected: Decimal | None) -> None:
    [variant] = product_from_rest(json.dumps(with_variant(price=price))).variants
    assert variant.price == expected


def test_tags_as_a_list_are_kept() -> None:
    record = product_from_rest(json.dumps(rest_product(tags=["b", " a ", ""])))
    assert record.tags == ["b", "a"]


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"{id: 1}", "products/update payload: JSON is malformed"),
        (b"[1, 2]", "products/update payload: Expected `object`, got `array`"),
        ({"updated_at": "2024-02-03T04:05:06Z"}, "Object missing required field `id`"),
        (rest_product(id="632910392"), "Expected `int`, got `str` - at `$.id`"),
        (rest_product(title=7), "Expected `str | null`, got `int` - at `$.title`"),
        (rest_product(tags={"a": 1}), "at `$.tags`"),
        (rest_product(variants={}), "Expected `array`, got `object` - at `$.variants`"),
        (
            rest_product(options=[{"position": 1}]),
            "missing required field `name` - at `$.options[0]`",
        ),
        (with_variant(id=None), "Expected `int`, got `null` - at `$.variants[0].id`"),
        (with_variant(inventory_quantity="10"), "at `$.variants[0].inventory_quantity`"),
        (with_variant(price=[1]), "at `$.variants[0].price`"),
        (rest_product(updated_at=None), "products/update payload has no updated_at"),
        (rest_product(updated_at="yesterday"), "updated_at is not an ISO 8601 time: 'yesterday'"),
        (rest_product(updated_at="2024-02-03T04:05:06"), "updated_at has no UTC offset"),
        (rest_product(created_at="soon"), "created_at is not an ISO 8601 time: 'soon'"),
        (with_variant(price="12,50"), "variant price is not a number: '12,50'"),
        (with_variant(compare_at_price="n/a"), "variant compare_at_price is not a number: 'n/a'"),
        (with_variant(created_at="2024-13-01T00:00:00Z"), "variant created_at is not an ISO 8601"),
        (with_variant(updated_at="2024-02-03 04:05"), "variant updated_at has no UTC offset"),
    ],
)
def test_bad_product_payloads_name_the_field(payload: Any, named: str) -> None:
    assert named in refusal(product_from_rest, payload)


# products/delete


def test_delete_payload_is_the_products_id() -> None:
    assert deleted_product_id(b'{"id": 788032119674292922}') == 788032119674292922


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"", "products/delete payload: Input data was truncated"),
        ({}, "products/delete payload: Object missing required field `id`"),
        ({"id": "788032119674292922"}, "Expected `int`, got `str` - at `$.id`"),
        ({"id": 1.5}, "Expected `int`, got `float` - at `$.id`"),
    ],
)
def test_bad_delete_payloads_name_the_field(payload: Any, named: str) -> None:
    assert named in refusal(deleted_product_id, payload)


# inventory_levels/update


def level(**changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "inventory_item_id": 271878346596884015,
        "location_id": 24826418,
        "available": 6,
        "updated_at": "2024-02-03T04:05:06-05:00",
        "admin_graphql_api_id": "gid://shopify/InventoryLevel/24826418?inventory_item_id=2718",
    }
    payload.update(changes)
    return payload


def test_level_payload_takes_its_id_from_the_gid() -> None:
    record = level_from_rest(json.dumps(level()), None)
    assert record.shopify_id == 24826418
    assert record.inventory_item_id == 271878346596884015
    assert record.location_id == 24826418
    assert record.available == 6
    assert record.shopify_updated_at == datetime(2024, 2, 3, 4, 5, 6, tzinfo=EST)


def test_level_payload_without_a_time_takes_the_deliverys() -> None:
    triggered = datetime(2024, 3, 1, tzinfo=UTC)
    record = level_from_rest(json.dumps(level(updated_at=None, available=None)), triggered)
    assert record.shopify_updated_at == triggered
    assert record.available is None


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"null", "inventory_levels/update payload: Expected `object`, got `null`"),
        ({"location_id": 1}, "Object missing required field `inventory_item_id`"),
        (level(location_id="24826418"), "Expected `int`, got `str` - at `$.location_id`"),
        (level(available="6"), "Expected `int | null`, got `str` - at `$.available`"),
        (level(updated_at=None), "inventory_levels/update payload has no updated_at"),
        (level(updated_at="noon"), "updated_at is not an ISO 8601 time: 'noon'"),
        (level(admin_graphql_api_id=None), "payload has no admin_graphql_api_id"),
        (level(admin_graphql_api_id="gid://shopify/Location/1"), "expected a InventoryLevel id"),
        (level(admin_graphql_api_id="gid://shopify/InventoryLevel/x1"), "malformed InventoryLevel"),
        (level(admin_graphql_api_id=f"gid://shopify/InventoryLevel/{1 << 63}"), "malformed"),
    ],
)
def test_bad_level_payloads_name_the_field(payload: Any, named: str) -> None:
    assert named in refusal(lambda raw: level_from_rest(raw, None), payload)


# bulk_operations/finish


def test_bulk_finish_payload() -> None:
    finish = _bulk_finish(
        '{"admin_graphql_api_id": "gid://shopify/BulkOperation/147595010", "status": "failed",'
        ' "error_code": "timeout", "created_at": "2024-01-02T03:04:05Z", "type": "query"}'
    )
    assert finish.admin_graphql_api_id == "gid://shopify/BulkOperation/147595010"
    assert finish.status == "failed"
    assert finish.error_code == "timeout"
    assert finish.type == "query"


@pytest.mark.parametrize(
    ("payload", "named"),
    [
        (b"{}", "bulk_operations/finish payload: Object missing required field"),
        (
            {"admin_graphql_api_id": "gid://shopify/BulkOperation/1"},
            "Object missing required field `status`",
        ),
        (
            {"admin_graphql_api_id": 1, "status": "completed"},
            "Expected `str`, got `int` - at `$.admin_graphql_api_id`",
        ),
        (
            {"admin_graphql_api_id": "gid://shopify/Product/1", "status": "completed"},
            "admin_graphql_api_id is not a bulk id",
        ),
        (
            {"admin_graphql_api_id": "gid://shopify/BulkOperation/1x", "status": "completed"},
            "admin_graphql_api_id is not a bulk id",
        ),
        (
            {"admin_graphql_api_id": "gid://shopify/BulkOperation/1", "status": None},
            "Expected `str`, got `null` - at `$.status`",
        ),
    ],
)
def test_bad_bulk_finish_payloads_name_the_field(payload: Any, named: str) -> None:
    assert named in refusal(lambda raw: _bulk_finish(raw.decode()), payload)


# app/uninstalled: the shop object; its numeric id is kept when it is there, never required.


@pytest.mark.parametrize(
    ("payload", "shop_id"),
    [
        ('{"id": 548380009, "name": "Super Toys", "domain": "toys.example"}', 548380009),
        ('{"name": "Super Toys"}', None),
        ('{"id": "548380009"}', None),
        ("not json", None),
    ],
)
def test_uninstalled_payload_names_the_shop_when_it_can(payload: str, shop_id: int | None) -> None:
    assert _shopify_shop_id(payload) == shop_id


# shop/redact: tolerant, a field missing or of the wrong type reads as None (the purge then skips).


@pytest.mark.parametrize(
    ("payload", "domain", "shop_id"),
    [
        (
            '{"shop_id": 954889, "shop_domain": " Snowdevil.MyShopify.com "}',
            "snowdevil.myshopify.com",
            954889,
        ),
        ('{"shop_id": "954889", "shop_domain": "a.myshopify.com"}', "a.myshopify.com", 954889),
        ('{"shop_id": true, "shop_domain": 7}', None, None),
        ('{"shop_id": "12a"}', None, None),
        ("[]", None, None),
        ("{", None, None),
    ],
)
def test_redact_payload(payload: str, domain: str | None, shop_id: int | None) -> None:
    request = RedactRequest.from_payload("webhook-1", payload)
    assert request.webhook_id == "webhook-1"
    assert request.shop_domain == domain
    assert request.shop_id == shop_id
