"""Reading a delivery's headers from the ASGI scope's raw list."""

from __future__ import annotations

import pytest

from neanelu.webhooks import headers


def _raw(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.encode(), value.encode("latin-1")) for name, value in pairs]


def test_first_of_repeated_headers_wins_as_in_starlette() -> None:
    fields = headers.by_name(
        _raw(
            [
                ("x-shopify-hmac-sha256", "sig"),
                ("x-shopify-topic", "products/update"),
                ("x-shopify-topic", "app/uninstalled"),
                ("x-shopify-shop-domain", "a.myshopify.com"),
                ("x-shopify-webhook-id", "w-1"),
            ]
        )
    )
    family = headers.family_of(fields)
    assert family is headers.CLASSIC
    found = headers.read(fields, family)
    assert found.topic == "products/update"
    assert (found.signature, found.shop_domain, found.webhook_id) == (
        "sig",
        "a.myshopify.com",
        "w-1",
    )
    assert found.api_version is None


def test_events_family_and_blank_values() -> None:
    fields = headers.by_name(
        _raw(
            [
                ("x-shopify-hmac-sha256", "  "),  # blank: not this family's signature
                ("shopify-hmac-sha256", "sig"),
                ("shopify-topic", " orders/create "),
                ("shopify-shop-domain", "b.myshopify.com"),
                ("shopify-event-id", "e-9"),
            ]
        )
    )
    family = headers.family_of(fields)
    assert family is headers.EVENTS
    found = headers.read(fields, family)
    assert (found.topic, found.webhook_id, found.event_id) == ("orders/create", "e-9", "e-9")
    fields.pop("shopify-shop-domain")
    with pytest.raises(headers.HeaderError, match="header shopify-shop-domain is missing"):
        headers.read(fields, family)
