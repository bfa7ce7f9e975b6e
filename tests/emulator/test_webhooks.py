"""Webhooks: Shopify's headers and HMAC (recomputed here), retries, modes, control-API driven topics."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from typing import Any

from shopify_emulator import AppCredentials, EmulatorConfig, ShopConfig
from tests.emulator.clients import Connect, MakeEmulator, Received, Receiver, ReceiverFactory, Shop

SECRET = "shpss_emulator_client_secret_0123456789"
ALL_TOPICS = [
    "PRODUCTS_CREATE",
    "PRODUCTS_UPDATE",
    "PRODUCTS_DELETE",
    "INVENTORY_LEVELS_UPDATE",
    "APP_UNINSTALLED",
    "APP_SCOPES_UPDATE",
]


def _valid(received: Received, secret: str = SECRET) -> bool:
    digest = hmac.new(secret.encode(), received.body, hashlib.sha256).digest()
    return hmac.compare_digest(
        base64.b64encode(digest).decode(), received.headers["x-shopify-hmac-sha256"]
    )


def _setup(
    make_emulator: MakeEmulator,
    connect: Connect,
    receiver_factory: ReceiverFactory,
    name: str,
    **config: Any,
) -> tuple[Shop, Receiver]:
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name=name, products=10)], time_scale=0.0002, **config)
    )
    shop = connect(emulator, name)
    receiver = receiver_factory()
    shop.control(
        "POST", "/webhooks/subscriptions", json={"topics": ALL_TOPICS, "uri": receiver.url}
    )
    return shop, receiver


def test_catalog_changes_fire_signed_webhooks(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    shop, receiver = _setup(make_emulator, connect, receiver_factory, "hooks")
    created = shop.control("POST", "/products", json={"title": "Fresh"})
    updated = shop.control("PATCH", "/products/8000000000001", json={"tags": ["a"]})
    shop.control("DELETE", "/products/8000000000002")
    item = updated["product"]["variants"][0]["inventoryItem"]["id"]
    level = shop.control(
        "POST",
        "/inventory",
        json={
            "inventory_item_id": item,
            "location_id": "gid://shopify/Location/70000000001",
            "available": 77,
        },
    )
    got = receiver.wait_for(4)
    assert sorted(receiver.topics()) == sorted(
        ["products/create", "products/update", "products/delete", "inventory_levels/update"]
    )
    for received in got:
        assert _valid(received)
        headers = received.headers
        assert headers["x-shopify-shop-domain"] == "hooks.myshopify.com"
        assert headers["x-shopify-api-version"] == "2026-01"
        assert headers["x-shopify-webhook-id"]
        assert headers["x-shopify-event-id"]
        assert headers["x-shopify-triggered-at"]
    by_topic = {r.headers["x-shopify-topic"]: json.loads(r.body) for r in got}
    assert by_topic["products/create"]["admin_graphql_api_id"] == created["product"]["id"]
    assert by_topic["products/update"]["tags"] == "a"
    assert by_topic["products/update"]["variants"][0]["inventory_item_id"] > 0
    assert by_topic["products/delete"] == {"id": 8000000000002}
    inventory = by_topic["inventory_levels/update"]
    assert inventory["available"] == 77
    assert inventory["location_id"] == 70000000001
    assert inventory["admin_graphql_api_id"] == level["admin_graphql_api_id"]
    truth = shop.control("GET", "/products/8000000000001")
    assert truth["variants"][0]["inventoryLevels"][1]["available"] == 77
    # A tampered body fails the same check.
    got[0].body += b" "
    assert not _valid(got[0])


def test_retries_with_backoff_then_success(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    shop, receiver = _setup(make_emulator, connect, receiver_factory, "retry")
    receiver.statuses = [500, 503, 404]
    shop.control("PATCH", "/products/8000000000001", json={"title": "Again"})
    got = receiver.wait_for(4)
    assert len(got) == 4
    assert len({r.headers["x-shopify-webhook-id"] for r in got}) == 1
    assert len({r.body for r in got}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert gaps[1] > gaps[0]
    assert gaps[2] > gaps[1]
    log = shop.control("GET", "/webhooks/deliveries")
    assert [entry["status"] for entry in log] == [500, 503, 404, 200]
    assert [e["attempt"] for e in log] == [0, 1, 2, 3]


def test_failing_endpoint_loses_its_subscription(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    shop, receiver = _setup(make_emulator, connect, receiver_factory, "gone", webhook_retries=3)
    receiver.statuses = [500] * 10
    shop.control("PATCH", "/products/8000000000001", json={"title": "x"})
    assert len(receiver.wait_for(4)) == 4
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        s["topic"] == "PRODUCTS_UPDATE" for s in shop.control("GET", "/webhooks/subscriptions")
    ):
        time.sleep(0.02)
    assert not any(
        s["topic"] == "PRODUCTS_UPDATE" for s in shop.control("GET", "/webhooks/subscriptions")
    )


def test_timeout_counts_as_failure(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    shop, receiver = _setup(
        make_emulator, connect, receiver_factory, "slowhook", webhook_timeout_s=0.2
    )
    receiver.delay_s = 0.5
    shop.control("PATCH", "/products/8000000000001", json={"title": "x"})
    receiver.wait_for(2)
    receiver.delay_s = 0.0
    log = shop.control("GET", "/webhooks/deliveries")
    assert log[0]["ok"] is False
    assert log[0]["error"] == "ReadTimeout"


def test_duplicate_and_reorder_modes(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    shop, receiver = _setup(make_emulator, connect, receiver_factory, "modes")
    shop.control("PUT", "/webhooks/mode", json={"mode": "duplicate"})
    shop.control("PATCH", "/products/8000000000001", json={"title": "dup"})
    got = receiver.wait_for(2)
    assert len(got) == 2
    assert got[0].headers["x-shopify-webhook-id"] == got[1].headers["x-shopify-webhook-id"]
    receiver.received.clear()
    shop.control("PUT", "/webhooks/mode", json={"mode": "reorder"})
    for title in ("first", "second", "third"):
        shop.control("PATCH", "/products/8000000000001", json={"title": title})
    got = receiver.wait_for(3)
    assert [json.loads(r.body)["title"] for r in got] == ["third", "second", "first"]
    stamps = [json.loads(r.body)["updated_at"] for r in got]
    assert stamps == sorted(stamps, reverse=True)  # newer-wins by updated_at recovers the order


def test_uninstall_scopes_and_compliance(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    compliance = receiver_factory()
    shop, receiver = _setup(
        make_emulator,
        connect,
        receiver_factory,
        "leaving",
        compliance_url=compliance.url,
        shop_redact_after_uninstall_s=1000,
    )
    scopes = shop.control("POST", "/scopes", json={"scopes": ["read_products"]})
    assert scopes["previous"] != scopes["current"] == ["read_products"]
    access = shop.http.get(
        "/admin/oauth/access_scopes.json", headers={"X-Shopify-Access-Token": shop.token}
    ).json()
    assert access == {"access_scopes": [{"handle": "read_products"}]}
    for topic in ("customers/data_request", "customers/redact"):
        shop.control("POST", "/compliance", json={"topic": topic})
    shop.control("POST", "/uninstall", json={})
    got = receiver.wait_for(2)
    assert sorted(receiver.topics()) == ["app/scopes_update", "app/uninstalled"]
    uninstalled = next(r for r in got if r.headers["x-shopify-topic"] == "app/uninstalled")
    assert json.loads(uninstalled.body)["myshopify_domain"] == "leaving.myshopify.com"
    assert _valid(uninstalled)
    assert (
        shop.http.get(
            "/admin/api/2026-01/shop.json", headers={"X-Shopify-Access-Token": shop.token}
        ).status_code
        == 401
    )
    # shop/redact follows 48 h later on the real clock: 1000 s * 0.0002 here.
    delivered = compliance.wait_for(3)
    assert [r.headers["x-shopify-topic"] for r in delivered] == [
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    ]
    assert all(_valid(r) for r in delivered)
    assert json.loads(delivered[2].body) == {
        "shop_id": json.loads(uninstalled.body)["id"],
        "shop_domain": "leaving.myshopify.com",
    }


def test_other_app_signs_with_its_own_secret(
    make_emulator: MakeEmulator, connect: Connect, receiver_factory: ReceiverFactory
) -> None:
    other = AppCredentials(
        client_id="second", client_secret="shpss_second_app_secret_00000000000000", api_client_id=3
    )
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="two", products=3)], other_app=other)
    )
    shop = connect(emulator, "two")
    receiver = receiver_factory()
    shop.control(
        "POST",
        "/webhooks/subscriptions",
        json={"topic": "PRODUCTS_UPDATE", "uri": receiver.url, "client_id": "second"},
    )
    shop.control("PATCH", "/products/8000000000001", json={"title": "x"})
    got = receiver.wait_for(1)
    assert _valid(got[0], other.client_secret)
    assert not _valid(got[0])
