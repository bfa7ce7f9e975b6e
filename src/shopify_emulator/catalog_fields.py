"""The rest of Shopify's catalog and inventory fields: prices, SEO, media, publications, shop settings.

`resolvers` holds the fields the project's own queries read; this module adds every other field the Admin
API reference lists for the same types, so a query written for real Shopify validates and gets an answer.
Features the emulated stores do not use (collections, selling plans, bundles, translations, events...)
answer as Shopify does for a store without them: null, an empty list, an empty connection, `false`.
`FIELDS` and `SOURCES` here are the complete tables GraphQL execution and the bulk writer read.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shopify_emulator import ids
from shopify_emulator import resolvers as r
from shopify_emulator.context import Context
from shopify_emulator.model import (
    Image,
    InventoryItem,
    InventoryLevel,
    Location,
    Metafield,
    Product,
    Variant,
)
from shopify_emulator.resolvers import Resolver, Source

CURRENCY = "EUR"
# The one sales channel of an emulated store; active products are published to it when created.
ONLINE_STORE = ids.gid("Publication", 90_000_000_001)


@dataclass(frozen=True, slots=True)
class MediaImage:
    """A product image seen as media (`media`, `featuredMedia`): Shopify's MediaImage wraps an Image."""

    image: Image
    product: Product


def _none(*_: Any) -> None:
    return None


def _false(*_: Any) -> bool:
    return False


def _true(*_: Any) -> bool:
    return True


def _empty(*_: Any) -> list[Any]:
    return []


def _zero_count(*_: Any) -> dict[str, Any]:
    return {"count": 0, "precision": "EXACT"}


def empty_source(_: Any, __: dict[str, Any], ___: Context, after: Any) -> Iterator[tuple[Any, Any]]:
    return iter(())


def _money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currencyCode": CURRENCY}


def _amount(value: float) -> str:
    # Shopify's Decimal prints without trailing zeros ("12.5", "30.0" as "30.0").
    return repr(round(value, 2))


def _decimal(price: str) -> str:
    return _amount(float(price))


# -- Product ---------------------------------------------------------------------------------------


def _published(p: Product) -> bool:
    return p.status == "ACTIVE"


def _price_range(p: Product, _: dict[str, Any], __: Context) -> dict[str, Any]:
    prices = [float(v.price) for v in p.variants] or [0.0]
    return {
        "minVariantPrice": _money(_amount(min(prices))),
        "maxVariantPrice": _money(_amount(max(prices))),
    }


def _compare_range(p: Product, _: dict[str, Any], __: Context) -> dict[str, Any] | None:
    prices = [float(v.compare_at_price) for v in p.variants if v.compare_at_price is not None]
    if not prices:
        return None
    return {
        "minVariantCompareAtPrice": _money(_amount(min(prices))),
        "maxVariantCompareAtPrice": _money(_amount(max(prices))),
    }


_TAG = re.compile(r"<[^>]+>")


def _description(p: Product, args: dict[str, Any], _: Context) -> str:
    text = html.unescape(_TAG.sub(" ", p.description_html))
    text = " ".join(text.split())
    limit = args.get("truncateAt")
    if limit is not None and len(text) > limit:
        return text[: max(0, limit - 1)].rstrip() + "…"
    return text


def _online_url(p: Product, ctx: Context) -> str:
    return f"https://{ctx.shop.domain}/products/{p.handle}"


def _publication() -> dict[str, Any]:
    return {
        "id": ONLINE_STORE,
        "name": "Online Store",
        "autoPublish": True,
        "supportsFuturePublishing": True,
    }


def _resource_publication(p: Product) -> dict[str, Any]:
    return {
        "isPublished": _published(p),
        "publication": _publication(),
        "publishDate": p.created_at,
        "publishable": p,
    }


def _publications_source(
    p: Product, args: dict[str, Any], _: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    if after == -1 and (_published(p) or args.get("onlyPublished") is False):
        yield 0, _resource_publication(p)


def _unpublished_source(
    p: Product, _: dict[str, Any], __: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    if after == -1 and not _published(p):
        yield 0, _publication()


def _media(p: Product) -> list[MediaImage]:
    return [MediaImage(image, p) for image in p.images]


def _media_source(
    p: Product, args: dict[str, Any], _: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    media = _media(p)
    if args.get("reverse"):
        media.reverse()
    return r.listed(media, after)


def _contextual_pricing(p: Product, a: dict[str, Any], c: Context) -> dict[str, Any]:
    prices = sorted(p.variants, key=lambda v: float(v.price))
    return {
        "fixedQuantityRulesCount": 0,
        "minVariantPricing": _variant_pricing(prices[0], a, c) if prices else None,
        "maxVariantPricing": _variant_pricing(prices[-1], a, c) if prices else None,
        "priceRange": _price_range(p, a, c),
    }


def _count(value: int) -> dict[str, Any]:
    return {"count": value, "precision": "EXACT"}


PRODUCT_FIELDS: dict[str, Resolver] = {
    "availablePublicationsCount": lambda p, a, c: _count(1 if _published(p) else 0),
    "category": _none,
    "combinedListing": _none,
    "combinedListingRole": _none,
    "compareAtPriceRange": _compare_range,
    "contextualPricing": _contextual_pricing,
    "defaultCursor": lambda p, a, c: r.encode_cursor(p.id),
    "description": _description,
    "featuredImage": lambda p, a, c: p.images[0] if p.images else None,
    "featuredMedia": lambda p, a, c: MediaImage(p.images[0], p) if p.images else None,
    "feedback": _none,
    "giftCardTemplateSuffix": _none,
    "hasOnlyDefaultVariant": lambda p, a, c: p.option_names == ["Title"],
    "hasOutOfStockVariants": lambda p, a, c: any(v.inventory_quantity <= 0 for v in p.variants),
    "hasVariantsThatRequiresComponents": _false,
    "inCollection": _false,
    "isGiftCard": _false,
    "mediaCount": lambda p, a, c: _count(len(p.images)),
    "onlineStorePreviewUrl": lambda p, a, c: _online_url(p, c),
    "onlineStoreUrl": lambda p, a, c: _online_url(p, c) if _published(p) else None,
    "priceRange": _price_range,
    "priceRangeV2": _price_range,
    "productComponentsCount": _zero_count,
    "publishedAt": lambda p, a, c: p.created_at if _published(p) else None,
    "publishedInContext": lambda p, a, c: _published(p),
    "publishedOnCurrentPublication": lambda p, a, c: _published(p),
    "publishedOnPublication": lambda p, a, c: _published(p) and a["publicationId"] == ONLINE_STORE,
    "requiresSellingPlan": _false,
    "resourcePublicationOnCurrentPublication": lambda p, a, c: (
        _resource_publication(p) if _published(p) else None
    ),
    "resourcePublicationsCount": lambda p, a, c: _count(
        1 if _published(p) or a.get("onlyPublished") is False else 0
    ),
    "restrictedForResource": _none,
    "sellingPlanGroupsCount": _zero_count,
    # An SEO title or description nobody set is null: storefronts fall back to the product's own.
    "seo": lambda p, a, c: {"title": None, "description": None},
    "templateSuffix": _none,
    "tracksInventory": _true,
    "translations": _empty,
}

# -- ProductVariant ------------------------------------------------------------------------------


def _variant_pricing(v: Variant, _: dict[str, Any], __: Context) -> dict[str, Any]:
    return {
        "price": _money(_decimal(v.price)),
        "compareAtPrice": None
        if v.compare_at_price is None
        else _money(_decimal(v.compare_at_price)),
        "unitPrice": None,
    }


def option_value_id(v: Variant, option_position: int) -> str:
    """Products' option values are numbered per (product, option, value); a value's number is the
    position draw the generator used for it, so variants and product options agree without a lookup."""
    position = v.position - 1
    draw = (position & 7, (position >> 3) & 15, position >> 7)[option_position]
    if v.options and v.options[0][0] == "Title":
        draw = 0
    number = (
        ids.OPTION_VALUE_BASE + (v.product_index * 4 + option_position) * ids.VARIANT_SLOTS + draw
    )
    return ids.gid("ProductOptionValue", number)


def selected_options(v: Variant, _: dict[str, Any], __: Context) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "value": value,
            "optionValue": {
                "id": option_value_id(v, n),
                "name": value,
                "hasVariants": True,
                "linkedMetafieldValue": None,
            },
        }
        for n, (name, value) in enumerate(v.options)
    ]


def _available_for_sale(v: Variant, _: dict[str, Any], ctx: Context) -> bool:
    product = ctx.catalog.product(v.product_index)
    # The inventory policy is DENY: a tracked variant sells only while it has stock.
    return product is not None and _published(product) and v.inventory_quantity > 0


VARIANT_FIELDS: dict[str, Resolver] = {
    "availableForSale": _available_for_sale,
    "contextualPricing": _variant_pricing,
    "defaultCursor": lambda v, a, c: r.encode_cursor(v.id),
    "deliveryProfile": lambda v, a, c: {
        "id": ids.gid("DeliveryProfile", 1),
        "name": "General profile",
        "default": True,
    },
    "image": _none,
    "inventoryPolicy": lambda v, a, c: "DENY",
    "requiresComponents": _false,
    "selectedOptions": selected_options,
    "sellableOnlineQuantity": lambda v, a, c: max(0, v.inventory_quantity),
    "sellingPlanGroupsCount": _zero_count,
    "showUnitPrice": _false,
    "taxCode": _none,
    "taxable": _true,
    "translations": _empty,
    "unitPrice": _none,
    "unitPriceMeasurement": _none,
}

# -- InventoryItem / InventoryLevel ---------------------------------------------------------------


def unit_cost(v: Variant) -> str:
    # The generated cost is 40% of the price, to the cent: a margin any report can show.
    return _amount(round(float(v.price) * 40) / 100)


def _item_variants(
    item: InventoryItem, _: dict[str, Any], __: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    return r.listed([item.variant], after)


INVENTORY_ITEM_FIELDS: dict[str, Resolver] = {
    "countryCodeOfOrigin": _none,
    "duplicateSkuCount": lambda i, a, c: 0,
    "harmonizedSystemCode": _none,
    "inventoryHistoryUrl": lambda i, a, c: (
        f"https://admin.shopify.com/store/{c.shop.config.name}/products/inventory/"
        f"{i.variant.inventory_item_id}/inventory_history"
    ),
    "locationsCount": lambda i, a, c: _count(len(i.variant.available)),
    "measurement": lambda i, a, c: {
        "id": ids.gid("InventoryItemMeasurement", i.variant.inventory_item_id),
        "weight": {"unit": "KILOGRAMS", "value": 0.0},
    },
    "provinceCodeOfOrigin": _none,
    "requiresShipping": _true,
    "trackedEditable": lambda i, a, c: {"locked": False, "reason": None},
    "unitCost": lambda i, a, c: _money(unit_cost(i.variant)),
}

LEVEL_FIELDS: dict[str, Resolver] = {
    # A location with stock of the item cannot stop stocking it.
    "canDeactivate": lambda lv, a, c: lv.variant.available[lv.location_index] == 0,
    "deactivationAlert": _none,
}

# -- Location -----------------------------------------------------------------------------------

_CITIES = (
    ("Bucharest", "RO"),
    ("Zürich", "CH"),
    ("Tokyo", "JP"),
    ("Cluj-Napoca", "RO"),
    ("Iași", "RO"),
)


def _address(loc: Location, _: dict[str, Any], __: Context) -> dict[str, Any]:
    city, country = _CITIES[loc.index % len(_CITIES)]
    street = f"Strada Exemplu {loc.index + 1}"
    return {
        "address1": street,
        "address2": None,
        "city": city,
        "country": {"RO": "Romania", "CH": "Switzerland", "JP": "Japan"}[country],
        "countryCode": country,
        "formatted": [street, city, country],
        "latitude": None,
        "longitude": None,
        "phone": None,
        "province": None,
        "provinceCode": None,
        "zip": f"{10000 + loc.index:05d}",
    }


def _location_level(loc: Location, args: dict[str, Any], ctx: Context) -> InventoryLevel | None:
    parsed = ids.parse_gid(args["inventoryItemId"])
    if parsed is None or parsed[0] != "InventoryItem":
        return None
    variant = ctx.catalog.variant_by_number(parsed[1])
    return None if variant is None else InventoryLevel(variant, loc.index)


def _location_levels(
    loc: Location, args: dict[str, Any], ctx: Context, after: Any
) -> Iterator[tuple[Any, Any]]:
    # Every item is stocked at every location: the location's levels are the items' in item order.
    for key, item in r.inventory_items_source(None, args, ctx, after):
        yield key, InventoryLevel(item.variant, loc.index)


LOCATION_FIELDS: dict[str, Resolver] = {
    "activatable": _false,
    "address": _address,
    "addressVerified": _true,
    "createdAt": lambda loc, a, c: "2019-01-01T00:00:00Z",
    "deactivatable": lambda loc, a, c: loc.index > 0,
    "deactivatedAt": _none,
    "deletable": _false,
    "fulfillmentService": _none,
    "fulfillsOnlineOrders": _true,
    "hasActiveInventory": _true,
    "hasUnfulfilledOrders": _false,
    "inventoryLevel": _location_level,
    "isFulfillmentService": _false,
    "isPrimary": lambda loc, a, c: loc.index == 0,
    "legacyResourceId": lambda loc, a, c: str(loc.id),
    "localPickupSettingsV2": _none,
    "metafield": _none,
    "shipsInventory": _true,
    "suggestedAddresses": _empty,
    "updatedAt": lambda loc, a, c: "2019-01-01T00:00:00Z",
}

# -- Metafield, Image, MediaImage ----------------------------------------------------------------


def _owner(m: Metafield, _: dict[str, Any], ctx: Context) -> Any:
    return r.find_node(m.owner_gid, ctx)


METAFIELD_FIELDS: dict[str, Resolver] = {
    "compareDigest": lambda m, a, c: hashlib.sha256(f"{m.id}:{m.value}".encode()).hexdigest(),
    "definition": _none,
    "description": _none,
    "legacyResourceId": lambda m, a, c: str(m.id),
    "owner": _owner,
    "reference": _none,
    "references": _none,
}

IMAGE_FIELDS: dict[str, Resolver] = {
    "metafield": _none,
    "originalSrc": lambda i, a, c: i.url,
    "src": lambda i, a, c: i.url,
    "thumbhash": _none,
    "transformedSrc": lambda i, a, c: i.url,
}

MEDIA_IMAGE_FIELDS: dict[str, Resolver] = {
    "alt": lambda m, a, c: m.image.alt_text,
    "createdAt": lambda m, a, c: m.product.created_at,
    "fileErrors": _empty,
    "fileStatus": lambda m, a, c: "READY",
    "id": lambda m, a, c: ids.gid("MediaImage", m.image.id),
    "image": lambda m, a, c: m.image,
    "mediaContentType": lambda m, a, c: "IMAGE",
    "mediaErrors": _empty,
    "mediaWarnings": _empty,
    "metafield": _none,
    "mimeType": lambda m, a, c: "image/jpeg",
    "originalSource": lambda m, a, c: {"fileSize": None, "url": m.image.url},
    "preview": lambda m, a, c: {"image": m.image, "status": "READY"},
    "status": lambda m, a, c: "READY",
    "updatedAt": lambda m, a, c: m.product.updated_at,
}

# -- Shop, webhook subscriptions -----------------------------------------------------------------

SHOP_FIELDS: dict[str, Resolver] = {
    "alerts": _empty,
    "billingAddress": lambda s, a, c: {
        "id": ids.gid("ShopAddress", s.shop_id),
        "address1": "Strada Exemplu 1",
        "address2": None,
        "city": "Bucharest",
        "company": None,
        "country": "Romania",
        "countryCodeV2": "RO",
        "formatted": ["Strada Exemplu 1", "010011 Bucharest", "Romania"],
        "formattedArea": "Bucharest, Romania",
        "latitude": 44.4268,
        "longitude": 26.1025,
        "phone": None,
        "province": None,
        "provinceCode": None,
        "zip": "010011",
    },
    "checkoutApiSupported": _false,
    "contactEmail": lambda s, a, c: s.shop_json()["email"],
    "createdAt": lambda s, a, c: "2019-01-01T00:00:00Z",
    "currencyFormats": lambda s, a, c: {
        "moneyFormat": "{{amount_with_comma_separator}} lei",
        "moneyInEmailsFormat": "{{amount_with_comma_separator}} lei",
        "moneyWithCurrencyFormat": "{{amount_with_comma_separator}} RON",
        "moneyWithCurrencyInEmailsFormat": "{{amount_with_comma_separator}} RON",
    },
    "description": _none,
    "enabledPresentmentCurrencies": lambda s, a, c: [CURRENCY],
    "features": lambda s, a, c: {
        "giftCards": False,
        "sellsSubscriptions": False,
        "storefront": True,
    },
    "metafield": _none,
    "orderNumberFormatPrefix": lambda s, a, c: "#",
    "orderNumberFormatSuffix": lambda s, a, c: "",
    "primaryDomain": lambda s, a, c: {
        "host": s.domain,
        "id": ids.gid("Domain", s.shop_id),
        "sslEnabled": True,
        "url": f"https://{s.domain}",
    },
    "resourceLimits": lambda s, a, c: {
        "locationLimit": 1000,
        "maxProductOptions": 3,
        "maxProductVariants": 2048,
        "redirectLimitReached": False,
    },
    "richTextEditorUrl": lambda s, a, c: (
        f"https://admin.shopify.com/store/{s.config.name}/rich_text_editor"
    ),
    "setupRequired": _false,
    "shipsToCountries": lambda s, a, c: ["RO"],
    "shopOwnerName": lambda s, a, c: "Emulated Owner",
    "taxesIncluded": _true,
    "taxShipping": _false,
    "timezoneAbbreviation": lambda s, a, c: "EET",
    "timezoneOffset": lambda s, a, c: "+0200",
    "timezoneOffsetMinutes": lambda s, a, c: 120,
    "transactionalSmsDisabled": _false,
    "unitSystem": lambda s, a, c: "METRIC_SYSTEM",
    "updatedAt": lambda s, a, c: "2026-01-01T00:00:00Z",
    "weightUnit": lambda s, a, c: "KILOGRAMS",
}

SUBSCRIPTION_FIELDS: dict[str, Resolver] = {
    "apiVersion": lambda s, a, c: {
        "handle": s.api_version,
        "displayName": s.api_version,
        "supported": True,
    },
    "filter": _none,
    "includeFields": _empty,
    "legacyResourceId": lambda s, a, c: str(s.id),
    "metafieldNamespaces": _empty,
    "metafields": _empty,
    "name": _none,
    "updatedAt": lambda s, a, c: s.created_at,
}


def _merge(*tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for table in tables:
        for type_name, fields in table.items():
            out.setdefault(type_name, {}).update(fields)
    return out


FIELDS: dict[str, dict[str, Resolver]] = _merge(
    r.FIELDS,
    {
        "Product": PRODUCT_FIELDS,
        "ProductVariant": VARIANT_FIELDS,
        "InventoryItem": INVENTORY_ITEM_FIELDS,
        "InventoryLevel": LEVEL_FIELDS,
        "Location": LOCATION_FIELDS,
        "Metafield": METAFIELD_FIELDS,
        "Image": IMAGE_FIELDS,
        "MediaImage": MEDIA_IMAGE_FIELDS,
        "Shop": SHOP_FIELDS,
        "WebhookSubscription": SUBSCRIPTION_FIELDS,
    },
)

_UNUSED_CONNECTIONS = {
    "Product": (
        "bundleComponents",
        "collections",
        "events",
        "productComponents",
        "productParents",
        "sellingPlanGroups",
    ),
    "ProductVariant": (
        "events",
        "media",
        "productParents",
        "productVariantComponents",
        "sellingPlanGroups",
    ),
    "InventoryItem": ("countryHarmonizedSystemCodes",),
    "InventoryLevel": ("scheduledChanges",),
    "Location": ("metafields",),
    "Image": ("metafields",),
    "MediaImage": ("metafields",),
    "Shop": ("metafields",),
}

SOURCES: dict[str, dict[str, Source]] = _merge(
    r.SOURCES,
    {
        "Product": {
            "media": _media_source,
            "resourcePublications": _publications_source,
            "resourcePublicationsV2": _publications_source,
            "unpublishedPublications": _unpublished_source,
        },
        "InventoryItem": {"variants": _item_variants},
        "Location": {"inventoryLevels": _location_levels},
    },
    {t: {name: empty_source for name in names} for t, names in _UNUSED_CONNECTIONS.items()},
)


def type_name_of(obj: Any) -> str | None:
    """The GraphQL type of a model object, for interfaces and unions (Node, Media, HasMetafields)."""
    return "MediaImage" if isinstance(obj, MediaImage) else r.type_name_of(obj)
