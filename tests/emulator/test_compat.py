"""Compatibility: the queries real Shopify clients send, answered with Shopify's shapes.

The queries are written from Shopify's Admin GraphQL reference (2026-01..2026-10) and from what public
open-source clients select (Airbyte's source-shopify bulk streams, Singer's tap-shopify incremental
product pages, shopify-app-js app templates, webhook registration helpers); none is copied. Each one is
validated by the emulator's schema (no `errors`), and its answer is checked value by value against the
schema's types and nullability (`shapes.check`); bulk queries are run as bulk operations and every JSONL
line is checked the same way against the node type it describes.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import GraphQLObjectType

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig
from shopify_emulator.graphql_api import schema
from tests.emulator.clients import Connect, MakeEmulator, Shop
from tests.emulator.shapes import check

# Airbyte-style products stream: product fields, media, options, then variants as child lines.
BULK_PRODUCTS = """{ products(query: "updated_at:>='2019-01-01T00:00:00+00:00'", sortKey: UPDATED_AT) {
  edges { node { __typename id legacyResourceId title handle description descriptionHtml vendor productType
    status tags createdAt updatedAt publishedAt templateSuffix giftCardTemplateSuffix isGiftCard
    hasOnlyDefaultVariant hasOutOfStockVariants requiresSellingPlan tracksInventory totalInventory
    onlineStoreUrl onlineStorePreviewUrl
    seo { title description }
    priceRangeV2 { minVariantPrice { amount currencyCode } maxVariantPrice { amount currencyCode } }
    compareAtPriceRange { minVariantCompareAtPrice { amount currencyCode } maxVariantCompareAtPrice { amount currencyCode } }
    featuredMedia { __typename alt id mediaContentType status preview { image { url width height } status }
      ... on MediaImage { image { id url altText width height } mimeType } }
    featuredImage { id url altText width height originalSrc src }
    mediaCount { count precision } variantsCount { count precision }
    options { id name position values optionValues { id name hasVariants } }
    category { id fullName }
    media { edges { node { __typename id alt mediaContentType status ... on MediaImage { image { url } } } } }
    variants { edges { node { __typename id title price } } }
  } } } }"""

# Airbyte-style product variants stream (a root of its own: variants with their inventory item).
BULK_VARIANTS = """{ productVariants(query: "updated_at:>='2019-01-01T00:00:00Z'") { edges { node {
  __typename id legacyResourceId title displayName sku barcode price compareAtPrice position taxable taxCode
  inventoryPolicy inventoryQuantity availableForSale sellableOnlineQuantity requiresComponents showUnitPrice
  createdAt updatedAt
  product { id }
  image { id url }
  selectedOptions { name value optionValue { id name } }
  inventoryItem { id tracked requiresShipping sku duplicateSkuCount harmonizedSystemCode countryCodeOfOrigin
    provinceCodeOfOrigin unitCost { amount currencyCode } measurement { weight { unit value } }
    trackedEditable { locked reason } createdAt updatedAt }
  metafields { edges { node { __typename id namespace key type value description createdAt updatedAt } } }
} } } }"""

# Inventory by location, as inventory-level streams read it.
BULK_LOCATIONS = """{ locations(includeLegacy: true, includeInactive: true) { edges { node {
  __typename id legacyResourceId name isActive isPrimary activatable deactivatable deletable addressVerified
  fulfillsOnlineOrders hasActiveInventory shipsInventory createdAt updatedAt deactivatedAt
  address { address1 address2 city country countryCode province provinceCode zip phone formatted }
  inventoryLevels { edges { node { __typename id canDeactivate createdAt updatedAt
    quantities(names: ["available", "on_hand", "committed", "incoming"]) { name quantity updatedAt }
    item { id sku } } } }
} } } }"""

# Metafield streams: owner type, description, and the owner itself.
BULK_METAFIELDS = """{ products { edges { node { id metafields { edges { node {
  __typename id legacyResourceId namespace key type value jsonValue description ownerType compareDigest
  createdAt updatedAt definition { id } owner { __typename ... on Product { id } }
} } } } } } }"""

# Singer-style incremental page: newest first by updated_at, filtered.
PAGE_PRODUCTS = """query Products($after: String, $query: String) {
  products(first: 10, after: $after, query: $query, sortKey: UPDATED_AT, reverse: true) {
    edges { cursor node { id title updatedAt publishedAt status
      resourcePublicationsV2(first: 1) { edges { node { isPublished publishDate publication { id name } } } }
      resourcePublicationsCount { count precision }
      availablePublicationsCount { count precision }
      publishedOnCurrentPublication
      variants(first: 5, sortKey: POSITION) { nodes { id sku inventoryPolicy taxable
        inventoryItem { unitCost { amount currencyCode } requiresShipping } } }
      metafields(first: 3) { nodes { namespace key value description } }
      collections(first: 1) { nodes { id } }
    } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
  productsCount(query: $query) { count precision }
}"""

SHOP = """{ shop { id name email contactEmail myshopifyDomain url currencyCode enabledPresentmentCurrencies
  ianaTimezone timezoneAbbreviation timezoneOffset timezoneOffsetMinutes weightUnit unitSystem taxesIncluded
  taxShipping setupRequired checkoutApiSupported createdAt updatedAt shopOwnerName description
  plan { displayName partnerDevelopment shopifyPlus publicDisplayName }
  primaryDomain { host url sslEnabled id }
  billingAddress { countryCodeV2 city zip formattedArea }
  currencyFormats { moneyFormat moneyWithCurrencyFormat }
  features { giftCards storefront sellsSubscriptions }
  resourceLimits { maxProductVariants maxProductOptions locationLimit redirectLimitReached } } }"""

LOCATIONS_PAGE = """{ locations(first: 10, includeLegacy: true, includeInactive: false, sortKey: NAME) {
  nodes { id name isActive isFulfillmentService fulfillmentService { id } localPickupSettingsV2 { pickupTime }
    inventoryLevel(inventoryItemId: "gid://shopify/InventoryItem/50000000000000") { id quantities(names: ["available"]) { quantity } }
    inventoryLevels(first: 3) { nodes { id item { id } location { id } } } }
  pageInfo { hasNextPage endCursor } }
  locationsCount { count precision }
  location { id name } }"""

WEBHOOKS = """{ webhookSubscriptions(first: 50, topics: [PRODUCTS_UPDATE]) { edges { node {
  id legacyResourceId topic format filter includeFields metafieldNamespaces createdAt updatedAt uri
  apiVersion { handle displayName supported }
  endpoint { __typename ... on WebhookHttpEndpoint { callbackUrl } } } } }
  webhookSubscriptionsCount { count precision } }"""

BULK_POLL = """query($id: ID!) { bulkOperation(id: $id) { id status errorCode createdAt completedAt objectCount
  rootObjectCount fileSize url partialDataUrl query type } currentBulkOperation { id status type } }"""

RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id status createdAt
  objectCount type } userErrors { field message code } } }"""


@pytest.fixture(scope="module")
def compat(make_emulator: MakeEmulator) -> RunningEmulator:
    return make_emulator(EmulatorConfig(shops=[ShopConfig(name="compat", products=60, seed=11)]))


@pytest.fixture
def shop(compat: RunningEmulator, connect: Connect) -> Shop:
    return connect(compat, "compat")


def _answer(
    shop: Any, query: str, variables: dict[str, Any] | None = None, version: str = "2026-10"
) -> dict[str, Any]:
    out = shop.gql(query, variables, version=version)
    assert "errors" not in out, out.get("errors")
    data = out["data"]
    root = schema().query_type
    assert root is not None
    assert check(schema(), root, data) > 0
    return dict(data)


def _bulk(shop: Any, query: str, node_types: dict[str, str]) -> list[dict[str, Any]]:
    run = shop.gql(RUN, {"q": query}, version="2026-10")["data"]["bulkOperationRunQuery"]
    assert run["userErrors"] == [], run["userErrors"]
    assert run["bulkOperation"]["status"] == "CREATED"
    op = shop.wait_bulk(run["bulkOperation"]["id"])
    assert op["status"] == "COMPLETED", op
    lines = [json.loads(line) for line in httpx.get(op["url"]).text.splitlines()]
    assert len(lines) == int(op["objectCount"]) > 0
    for n, line in enumerate(lines):
        gtype = schema().type_map[node_types.get(line["__typename"], line["__typename"])]
        assert isinstance(gtype, GraphQLObjectType)
        body = {k: v for k, v in line.items() if k != "__parentId"}
        check(schema(), gtype, body, f"line {n}")
    return lines


def test_airbyte_style_products_bulk_stream(shop: Shop) -> None:
    lines = _bulk(shop, BULK_PRODUCTS, {})
    products = [line for line in lines if line["__typename"] == "Product"]
    assert len(products) == 60
    stamps = [p["updatedAt"] for p in products]
    assert stamps == sorted(stamps)  # sortKey: UPDATED_AT holds in bulk files too
    for p in products:
        prices = p["priceRangeV2"]
        assert float(prices["minVariantPrice"]["amount"]) <= float(
            prices["maxVariantPrice"]["amount"]
        )
        assert prices["minVariantPrice"]["currencyCode"] == "EUR"
        assert (p["publishedAt"] is not None) == (p["status"] == "ACTIVE")
        assert p["seo"] == {"title": None, "description": None}
        assert p["mediaCount"]["count"] == (1 if p["featuredMedia"] else 0) or p["featuredMedia"]
        if p["featuredMedia"] is not None:
            assert p["featuredMedia"]["__typename"] == "MediaImage"
            assert p["featuredMedia"]["image"]["url"] == p["featuredImage"]["url"]
        assert "<" not in p["description"]
    media = [line for line in lines if line["__typename"] == "MediaImage"]
    assert media
    assert all(m["__parentId"].startswith("gid://shopify/Product/") for m in media)
    variants = [line for line in lines if line["__typename"] == "ProductVariant"]
    assert sum(p["variantsCount"]["count"] for p in products) == len(variants)


def test_airbyte_style_variants_bulk_stream(shop: Shop) -> None:
    lines = _bulk(shop, BULK_VARIANTS, {})
    variants = [line for line in lines if line["__typename"] == "ProductVariant"]
    assert variants
    for v in variants:
        assert v["inventoryPolicy"] == "DENY"
        assert v["taxable"] is True
        item = v["inventoryItem"]
        assert item["requiresShipping"] is True
        # A unit cost below the price, in the shop's currency.
        assert 0 < float(item["unitCost"]["amount"]) < float(v["price"])
        assert item["unitCost"]["currencyCode"] == "EUR"
        assert all(o["optionValue"]["name"] == o["value"] for o in v["selectedOptions"])
        assert (
            v["availableForSale"] == (v["sellableOnlineQuantity"] > 0) or not v["availableForSale"]
        )
    assert any(line["__typename"] == "Metafield" for line in lines)


def test_inventory_by_location_bulk_stream(shop: Shop) -> None:
    lines = _bulk(shop, BULK_LOCATIONS, {})
    locations = [line for line in lines if line["__typename"] == "Location"]
    levels = [line for line in lines if line["__typename"] == "InventoryLevel"]
    assert len(locations) == 2
    # Every item is stocked at every location.
    items = {level["item"]["id"] for level in levels}
    assert len(levels) == 2 * len(items)
    assert {line["__parentId"] for line in levels} == {loc["id"] for loc in locations}


def test_metafields_bulk_stream_with_owner(shop: Shop) -> None:
    lines = _bulk(shop, BULK_METAFIELDS, {})
    metafields = [line for line in lines if line["__typename"] == "Metafield"]
    assert metafields
    for m in metafields:
        assert m["owner"]["id"] == m["__parentId"]
        assert m["ownerType"] == "PRODUCT"
        assert m["description"] is None
        assert m["definition"] is None
        assert len(m["compareDigest"]) == 64


def test_singer_style_incremental_pages(shop: Shop) -> None:
    seen: list[dict[str, Any]] = []
    after = None
    query = "updated_at:>='2019-06-01T00:00:00Z'"
    while True:
        data = _answer(shop, PAGE_PRODUCTS, {"after": after, "query": query})
        page = data["products"]
        seen += [edge["node"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] == (after is not None)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    stamps = [node["updatedAt"] for node in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert all(stamp >= "2019-06-01T00:00:00Z" for stamp in stamps)
    assert len({node["id"] for node in seen}) == len(seen) == data["productsCount"]["count"]
    for node in seen:
        published = node["status"] == "ACTIVE"
        assert node["publishedOnCurrentPublication"] == published
        assert node["resourcePublicationsCount"]["count"] == (1 if published else 0)
        assert node["collections"]["nodes"] == []


def test_shop_settings_query(shop: Shop) -> None:
    data = _answer(shop, SHOP)["shop"]
    assert data["myshopifyDomain"] == "compat.myshopify.com"
    assert data["timezoneOffsetMinutes"] == 120
    assert data["ianaTimezone"] == "Europe/Bucharest"
    assert data["primaryDomain"]["url"] == "https://compat.myshopify.com"


def test_locations_page_with_levels_and_counts(shop: Shop) -> None:
    data = _answer(shop, LOCATIONS_PAGE)
    names = [node["name"] for node in data["locations"]["nodes"]]
    assert names == sorted(names)
    assert data["locationsCount"]["count"] == len(names) == 2
    level = next(n["inventoryLevel"] for n in data["locations"]["nodes"])
    assert level is not None
    assert isinstance(level["quantities"][0]["quantity"], int)


def test_webhook_registration_listing(shop: Shop) -> None:
    created = shop.gql(
        'mutation { webhookSubscriptionCreate(topic: PRODUCTS_UPDATE, webhookSubscription: {uri: "https://hooks.example/p", format: JSON}) { webhookSubscription { id } userErrors { message } } }',
        version="2026-10",
    )["data"]["webhookSubscriptionCreate"]
    assert created["userErrors"] == []
    data = _answer(shop, WEBHOOKS)
    node = data["webhookSubscriptions"]["edges"][0]["node"]
    assert node["apiVersion"]["handle"] == "2026-10"
    assert node["uri"] == "https://hooks.example/p"
    assert data["webhookSubscriptionsCount"]["count"] >= 1


def test_bulk_operation_polling_fields(shop: Shop) -> None:
    op_id = shop.run_bulk("{ products { edges { node { id } } } }", version="2026-10")
    shop.wait_bulk(op_id)
    data = _answer(shop, BULK_POLL, {"id": op_id})
    assert data["bulkOperation"]["status"] == "COMPLETED"
    assert data["bulkOperation"]["objectCount"] == "60"
    assert data["bulkOperation"]["type"] == "QUERY"


@pytest.mark.parametrize("version", ["2026-01", "2026-04", "2026-07", "2026-10"])
def test_issue_fields_validate_in_every_served_version(shop: Shop, version: str) -> None:
    # The fields the issue names as INVALID before, in one query per served version.
    query = """{ products(first: 2) { nodes { publishedAt seo { title } priceRangeV2 { minVariantPrice { amount } }
      featuredMedia { __typename id } variants(first: 2) { nodes { inventoryPolicy taxable
        inventoryItem { unitCost { amount } requiresShipping } metafields(first: 1) { nodes { description } } } } } }
      locations(first: 5, includeLegacy: true, includeInactive: true) { nodes { inventoryLevels(first: 1) { nodes { id } } } } }"""
    data = _answer(shop, query, version=version)
    assert len(data["products"]["nodes"]) == 2
