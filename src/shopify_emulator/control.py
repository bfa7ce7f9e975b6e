"""The control API under `/_emulator`: change the world and read the truth. JSON, unauthenticated."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shopify_emulator import ids
from shopify_emulator.catalog import Catalog, is_app_owned, now_iso
from shopify_emulator.config import ShopConfig
from shopify_emulator.faults import FAULT_KINDS, Fault
from shopify_emulator.model import Metafield, Product
from shopify_emulator.state import (
    COMPLIANCE_TOPICS,
    TOPICS,
    EmulatorState,
    ServedFile,
    ShopState,
    WebhookSubscription,
)
from shopify_emulator.webhooks import MODES, Dispatcher, level_payload, product_payload


def _json(payload: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type="application/json")


def _error(message: str, status: int = 400) -> Response:
    return _json({"error": message}, status)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    decoded = msgspec.json.decode(raw)
    if not isinstance(decoded, dict):
        raise ValueError("body must be a JSON object")
    return decoded


def _product_index(raw: str) -> int | None:
    parsed = ids.parse_gid(raw)
    number = parsed[1] if parsed else (int(raw) if raw.isdigit() else None)
    return None if number is None else number - ids.PRODUCT_BASE


def _metafield_json(metafield: Metafield) -> dict[str, Any]:
    return {
        "id": ids.gid("Metafield", metafield.id),
        "namespace": metafield.namespace,
        "key": metafield.key,
        "type": metafield.type,
        "value": metafield.value,
        "createdAt": metafield.created_at,
        "updatedAt": metafield.updated_at,
        "appOwned": is_app_owned(metafield.namespace),
    }


def product_state(catalog: Catalog, product: Product) -> dict[str, Any]:
    """One product's whole truth in the GraphQL field names the bulk files use."""
    variants = []
    for variant in product.variants:
        variants.append(
            {
                "id": ids.gid("ProductVariant", variant.id),
                "title": variant.title,
                "sku": variant.sku,
                "price": variant.price,
                "compareAtPrice": variant.compare_at_price,
                "barcode": variant.barcode,
                "position": variant.position,
                "inventoryQuantity": variant.inventory_quantity,
                "createdAt": variant.created_at,
                "updatedAt": variant.updated_at,
                "inventoryItem": {"id": ids.gid("InventoryItem", variant.inventory_item_id)},
                "selectedOptions": [{"name": n, "value": v} for n, v in variant.options],
                "metafields": [_metafield_json(m) for m in catalog.variant_metafields(variant)],
                "inventoryLevels": [
                    {
                        "id": ids.level_gid(variant.inventory_item_id, loc),
                        "location": {"id": ids.gid("Location", ids.location_id(loc))},
                        "available": variant.available[loc],
                        "updatedAt": variant.level_updated_at[loc],
                    }
                    for loc in range(len(variant.available))
                ],
            }
        )
    return {
        "id": ids.gid("Product", product.id),
        "legacyResourceId": str(product.id),
        "handle": product.handle,
        "title": product.title,
        "vendor": product.vendor,
        "productType": product.product_type,
        "status": product.status,
        "tags": product.tags,
        "descriptionHtml": product.description_html,
        "createdAt": product.created_at,
        "updatedAt": product.updated_at,
        "images": [
            {"id": ids.gid("ProductImage", i.id), "url": i.url, "altText": i.alt_text}
            for i in product.images
        ],
        "metafields": [_metafield_json(m) for m in catalog.metafields(product)],
        "variants": variants,
    }


class ControlApi:
    def __init__(self, state: EmulatorState, dispatcher: Dispatcher) -> None:
        self.state = state
        self.dispatcher = dispatcher

    def routes(self) -> list[Route]:
        s = "/_emulator/shops/{shop}"
        return [
            Route("/_emulator/health", self.health),
            Route("/_emulator/shops", self.shops, methods=["GET", "POST"]),
            Route(s, self.shop_info),
            Route(s + "/counts", self.counts),
            Route(s + "/tokens", self.mint_token, methods=["POST"]),
            Route(s + "/tokens/revoke", self.revoke, methods=["POST"]),
            Route(s + "/uninstall", self.uninstall, methods=["POST"]),
            Route(s + "/scopes", self.scopes, methods=["POST"]),
            Route(s + "/compliance", self.compliance, methods=["POST"]),
            Route(s + "/products", self.create_product, methods=["POST"]),
            Route(
                s + "/products/{product:path}",
                self.product,
                methods=["GET", "PATCH", "PUT", "DELETE"],
            ),
            Route(s + "/inventory", self.set_inventory, methods=["POST"]),
            Route(s + "/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route(s + "/webhooks/mode", self.webhook_mode, methods=["GET", "PUT", "POST"]),
            Route(s + "/webhooks/deliveries", self.deliveries, methods=["GET", "DELETE"]),
            Route(s + "/webhooks/subscriptions", self.subscriptions, methods=["GET", "POST"]),
            Route(s + "/bulk", self.bulk_list),
            Route(s + "/bulk/served-files", self.served_files, methods=["GET", "POST", "DELETE"]),
        ]

    def _shop(self, request: Request) -> ShopState | None:
        return self.state.shop_named(request.path_params["shop"])

    def _app(self, body: dict[str, Any]) -> Any:
        return self.state.apps.get(str(body.get("client_id", self.state.config.client_id)))

    async def health(self, request: Request) -> Response:
        indexing = [s.config.name for s in self.state.shops.values() if s.catalog.index.warming]
        return _json({"ok": True, "shops": len(self.state.shops), "indexing": indexing})

    async def shops(self, request: Request) -> Response:
        if request.method == "POST":
            body = await _body(request)
            try:
                shop = self.state.add_shop(
                    ShopConfig(
                        name=str(body["name"]),
                        products=int(body.get("products", 100)),
                        seed=int(body.get("seed", 1)),
                        plan=body.get("plan", "standard"),
                    )
                )
            except (KeyError, ValueError) as exc:
                return _error(str(exc))
            return _json(self._shop_info(shop), 201)
        return _json([self._shop_info(shop) for shop in self.state.shops.values()])

    def _shop_info(self, shop: ShopState) -> dict[str, Any]:
        rate, size = shop.config.limits()
        return {
            "name": shop.config.name,
            "domain": shop.domain,
            "id": shop.shop_id,
            "products": shop.config.products,
            "seed": shop.config.seed,
            "plan": shop.config.plan,
            "restore_rate": rate,
            "bucket_size": size,
            # Per app (client id): the GraphQL budget it used since the emulator started.
            "usage": {app: bucket.usage() for app, bucket in shop.buckets.items()},
        }

    async def shop_info(self, request: Request) -> Response:
        shop = self._shop(request)
        return _json(self._shop_info(shop)) if shop else _error("unknown shop", 404)

    async def counts(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        counts = shop.catalog.counts().as_dict()
        counts["locations"] = len(shop.catalog.locations)
        return _json(counts)

    async def mint_token(self, request: Request) -> Response:
        """A shortcut past OAuth for tests that only need a working token."""
        shop = self._shop(request)
        body = await _body(request)
        app = self._app(body)
        if shop is None or app is None:
            return _error("unknown shop or app", 404)
        scopes = tuple(body.get("scopes") or app.scopes)
        access, refresh = self.state.issue_token(
            shop, app, scopes, expiring=bool(body.get("expiring", False))
        )
        return _json(
            {
                "access_token": access.value,
                "refresh_token": refresh.value if refresh else None,
                "scope": ",".join(scopes),
                "expires_at": access.expires_at,
            }
        )

    async def revoke(self, request: Request) -> Response:
        shop = self._shop(request)
        body = await _body(request)
        if shop is None:
            return _error("unknown shop", 404)
        return _json({"revoked": self.state.revoke_tokens(shop, body.get("client_id"))})

    async def uninstall(self, request: Request) -> Response:
        shop = self._shop(request)
        body = await _body(request)
        app = self._app(body)
        if shop is None or app is None:
            return _error("unknown shop or app", 404)
        event_id = self.dispatcher.fire(
            shop, "APP_UNINSTALLED", shop.shop_json(), client_id=app.client_id
        )
        revoked = self.state.revoke_tokens(shop, app.client_id)
        for sub_id in [
            k for k, sub in shop.subscriptions.items() if sub.client_id == app.client_id
        ]:
            del shop.subscriptions[sub_id]
        delay = self.state.config.shop_redact_after_uninstall_s * self.state.config.time_scale
        payload = {"shop_id": shop.shop_id, "shop_domain": shop.domain}
        self.dispatcher.schedule_later(
            delay, lambda: self.dispatcher.fire_compliance(shop, app, "shop/redact", payload)
        )
        return _json({"revoked": revoked, "event_id": event_id, "shop_redact_in_s": delay})

    async def scopes(self, request: Request) -> Response:
        shop = self._shop(request)
        body = await _body(request)
        app = self._app(body)
        if shop is None or app is None or not isinstance(body.get("scopes"), list):
            return _error("need shop, app and scopes[]")
        previous = list(shop.granted_scopes.get(app.client_id, app.scopes))
        current = tuple(str(s) for s in body["scopes"])
        shop.granted_scopes[app.client_id] = current
        for token in shop.tokens.values():
            if token.app.client_id == app.client_id:
                token.scopes = current
        payload = {
            "id": self.state.next_id(),
            "shop_id": shop.shop_id,
            "previous": previous,
            "current": list(current),
            "updated_at": now_iso(self.state.clock).replace("Z", "+00:00"),
        }
        event_id = self.dispatcher.fire(shop, "APP_SCOPES_UPDATE", payload, client_id=app.client_id)
        return _json({"event_id": event_id, **payload})

    async def compliance(self, request: Request) -> Response:
        shop = self._shop(request)
        body = await _body(request)
        app = self._app(body)
        topic = body.get("topic")
        if shop is None or app is None or topic not in COMPLIANCE_TOPICS:
            return _error(f"need shop, app and topic in {COMPLIANCE_TOPICS}")
        payload: dict[str, Any] = {"shop_id": shop.shop_id, "shop_domain": shop.domain}
        customer = {"id": 207119551, "email": "john@example.com", "phone": "+40-700-000-000"}
        if topic == "customers/data_request":
            payload.update(customer=customer, orders_requested=[299938], data_request={"id": 9999})
        elif topic == "customers/redact":
            payload.update(customer=customer, orders_to_redact=[299938])
        sent = self.dispatcher.fire_compliance(shop, app, str(topic), payload)
        return _json({"sent": sent, "payload": payload}, 200 if sent else 409)

    async def create_product(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        body = await _body(request)
        title = body.pop("title", None)
        try:
            product = shop.catalog.create_product(title, body)
        except ValueError as exc:
            return _error(str(exc))
        event_id = self.dispatcher.fire(shop, "PRODUCTS_CREATE", product_payload(product))
        return _json({"event_id": event_id, "product": product_state(shop.catalog, product)}, 201)

    async def product(self, request: Request) -> Response:
        shop = self._shop(request)
        index = _product_index(request.path_params["product"])
        if shop is None or index is None:
            return _error("unknown shop or bad product id", 404)
        catalog = shop.catalog
        if request.method == "GET":
            product = catalog.product(index)
            return (
                _json(product_state(catalog, product))
                if product
                else _error("no such product", 404)
            )
        if request.method == "DELETE":
            deleted = catalog.delete_product(index)
            if deleted is None:
                return _error("no such product", 404)
            event_id = self.dispatcher.fire(shop, "PRODUCTS_DELETE", {"id": deleted.id})
            return _json({"event_id": event_id, "deleted": ids.gid("Product", deleted.id)})
        try:
            updated = catalog.update_product(index, await _body(request))
        except ValueError as exc:
            return _error(str(exc))
        if updated is None:
            return _error("no such product", 404)
        event_id = self.dispatcher.fire(shop, "PRODUCTS_UPDATE", product_payload(updated))
        return _json({"event_id": event_id, "product": product_state(catalog, updated)})

    async def set_inventory(self, request: Request) -> Response:
        shop = self._shop(request)
        body = await _body(request)
        if shop is None:
            return _error("unknown shop", 404)
        item = ids.parse_gid(str(body.get("inventory_item_id", "")))
        item_id = item[1] if item else int(body.get("inventory_item_id", 0))
        location = ids.parse_gid(str(body.get("location_id", "")))
        location_id = location[1] if location else int(body.get("location_id", ids.location_id(0)))
        loc = location_id - ids.LOCATION_BASE
        variant = shop.catalog.set_inventory(item_id, loc, int(body["available"]))
        if variant is None:
            return _error("no such inventory item or location", 404)
        payload = level_payload(variant, loc)
        event_id = self.dispatcher.fire(shop, "INVENTORY_LEVELS_UPDATE", payload)
        return _json({"event_id": event_id, **payload})

    async def faults(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        if request.method == "POST":
            body = await _body(request)
            try:
                shop.faults.set(
                    Fault(
                        kind=str(body.get("kind")),
                        count=body.get("count"),
                        duration_s=body.get("duration_s"),
                        params=dict(body.get("params") or {}),
                        ratio=_ratio(body.get("ratio")),
                        seed=int(body.get("seed") or 0),
                    )
                )
            except (TypeError, ValueError) as exc:
                return _error(str(exc))
        elif request.method == "DELETE":
            shop.faults.clear(request.query_params.get("kind"))
        return _json({"faults": shop.faults.listing(), "known": FAULT_KINDS})

    async def webhook_mode(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        if request.method != "GET":
            mode = (await _body(request)).get("mode")
            if mode not in MODES:
                return _error(f"mode must be one of {MODES}")
            shop.webhook_mode = str(mode)
        return _json({"mode": shop.webhook_mode})

    async def deliveries(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        if request.method == "DELETE":
            shop.deliveries.clear()
        return _json(shop.deliveries)

    async def subscriptions(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        if request.method == "POST":
            body = await _body(request)
            app = self._app(body)
            topics = body.get("topics") or [body.get("topic")]
            if app is None or not all(t in TOPICS for t in topics) or not body.get("uri"):
                return _error(f"need uri and topic(s) in {list(TOPICS)}")
            for topic in topics:
                sub = WebhookSubscription(
                    id=self.state.next_id(),
                    topic=str(topic),
                    uri=str(body["uri"]),
                    client_id=app.client_id,
                    api_version=str(body.get("api_version", self.state.config.default_api_version)),
                    created_at=now_iso(self.state.clock),
                )
                shop.subscriptions[sub.id] = sub
        return _json(
            [
                {
                    "id": ids.gid("WebhookSubscription", s.id),
                    "topic": s.topic,
                    "uri": s.uri,
                    "client_id": s.client_id,
                }
                for s in shop.subscriptions.values()
            ]
        )

    async def bulk_list(self, request: Request) -> Response:
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        return _json(
            [
                {
                    "id": op.gid,
                    # What a poll sees now (a completed run whose result is gone reads EXPIRED).
                    "status": op.status_now(
                        self.state.config.bulk_url_ttl_s, self.state.clock.time()
                    ),
                    "error_code": op.error_code,
                    "object_count": op.object_count,
                    "root_object_count": op.root_object_count,
                    "file_size": op.file_size,
                    "group_objects": op.group_objects,
                    "client_id": op.client_id,
                    # Clock times of the mutation's answer and of the ending (null while it runs).
                    "created_s": op.created_s,
                    "finished_s": op.finished_at,
                }
                for op in shop.bulk_operations.values()
            ]
        )

    async def served_files(self, request: Request) -> Response:
        """Exact bytes served in place of the next matching bulk run's result (hostile files)."""
        shop = self._shop(request)
        if shop is None:
            return _error("unknown shop", 404)
        if request.method == "POST":
            body = await _body(request)
            contains, content = body.get("query_contains"), body.get("content_base64")
            if not isinstance(contains, str) or not contains or not isinstance(content, str):
                return _error("need query_contains (text) and content_base64")
            try:
                raw = base64.b64decode(content, validate=True)
            except binascii.Error as exc:
                return _error(f"content_base64 is not base64: {exc}")
            shop.served_files.append(ServedFile(contains, raw))
        elif request.method == "DELETE":
            shop.served_files.clear()
        return _json(
            [
                {"query_contains": f.query_contains, "bytes": len(f.content)}
                for f in shop.served_files
            ]
        )


def _ratio(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"ratio must be a number in (0, 1], not {value!r}")
    return float(value)
