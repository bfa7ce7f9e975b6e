"""Every fault, switched on at run time through the control API."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from shopify_emulator import EmulatorConfig, ShopConfig
from shopify_emulator.clock import ManualClock
from tests.emulator.clients import Connect, MakeEmulator, ReceiverFactory, Shop

CORE = "{ products { edges { node { id title variants { edges { node { id sku } } } } } } }"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def shop(make_emulator: MakeEmulator, connect: Connect, clock: ManualClock) -> Shop:
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="faulty", products=60)], clock=clock)
    )
    return connect(emulator, "faulty")


def _fault(shop: Shop, kind: str, **body: Any) -> None:
    shop.control("POST", "/faults", json={"kind": kind, **body})


def _post(shop: Shop) -> httpx.Response:
    return shop.http.post(
        "/admin/api/2026-01/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"X-Shopify-Access-Token": shop.token},
    )


def test_http_429_with_retry_after_then_recovers(shop: Shop) -> None:
    _fault(shop, "http_429", count=2, params={"retry_after": "1.5"})
    first, second, third = _post(shop), _post(shop), _post(shop)
    assert first.status_code == second.status_code == 429
    assert first.headers["retry-after"] == "1.5"
    assert third.status_code == 200
    assert shop.control("GET", "/faults")["faults"][0]["fired"] == 2


def test_5xx_burst_and_duration(shop: Shop, clock: ManualClock) -> None:
    _fault(shop, "http_5xx", duration_s=30, params={"status": 502})
    assert _post(shop).status_code == 502
    clock.advance(29)
    assert _post(shop).status_code == 502
    clock.advance(1)
    assert _post(shop).status_code == 200


def test_throttled_and_slow(shop: Shop) -> None:
    _fault(shop, "throttled", count=1)
    out = shop.gql("{ shop { id } }")
    assert out["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert out["extensions"]["cost"]["actualQueryCost"] is None
    assert "errors" not in shop.gql("{ shop { id } }")
    _fault(shop, "slow", count=1, params={"delay_s": 0.3})
    started = time.monotonic()
    _post(shop)
    assert time.monotonic() - started >= 0.3


def test_clear_faults(shop: Shop) -> None:
    _fault(shop, "http_5xx")
    assert _post(shop).status_code == 503
    shop.http.delete("/_emulator/shops/faulty/faults", params={"kind": "http_5xx"})
    assert _post(shop).status_code == 200
    bad = shop.http.post("/_emulator/shops/faulty/faults", json={"kind": "nope"})
    assert bad.status_code == 400


def test_reset_mid_download_then_range_resume(shop: Shop) -> None:
    url = shop.wait_bulk(shop.run_bulk(CORE))["url"]
    full = httpx.get(url).content
    _fault(shop, "reset_download", count=1, params={"after_bytes": 1000})
    received = bytearray()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", url) as response:
        assert int(response.headers["content-length"]) == len(full)
        for chunk in response.iter_raw():
            received += chunk
    assert len(received) == 1000
    resumed = httpx.get(url, headers={"Range": f"bytes={len(received)}-"})
    assert resumed.status_code == 206
    assert bytes(received) + resumed.content == full


def test_truncated_jsonl(shop: Shop) -> None:
    _fault(shop, "truncated_jsonl", count=1)
    op = shop.wait_bulk(shop.run_bulk(CORE))
    body = httpx.get(op["url"]).content
    assert op["status"] == "COMPLETED"
    assert not body.endswith(b"\n")
    assert body.count(b"\n") == int(op["objectCount"]) - 1
    assert len(body) < int(op["fileSize"])


def test_failed_with_partial_data(shop: Shop) -> None:
    _fault(
        shop,
        "bulk_failed",
        count=1,
        params={"after_lines": 25, "error_code": "INTERNAL_SERVER_ERROR"},
    )
    op = shop.wait_bulk(shop.run_bulk(CORE))
    assert op["status"] == "FAILED"
    assert op["errorCode"] == "INTERNAL_SERVER_ERROR"
    assert op["url"] is None
    partial = httpx.get(op["partialDataUrl"]).content
    assert partial.count(b"\n") == int(op["objectCount"]) == 25


def test_completed_with_null_url(shop: Shop, receiver_factory: ReceiverFactory) -> None:
    _fault(shop, "null_url", count=1)
    op = shop.wait_bulk(shop.run_bulk(CORE))
    assert op["status"] == "COMPLETED"
    assert int(op["objectCount"]) > 0
    assert op["url"] is None


def test_expired_url(shop: Shop) -> None:
    op_id = shop.run_bulk(CORE)
    shop.wait_bulk(op_id)
    _fault(shop, "expired_url", count=1)
    op = shop.wait_bulk(op_id)
    response = httpx.get(op["url"])
    assert response.status_code == 403
    assert b"<Code>ExpiredToken</Code>" in response.content
    assert httpx.get(shop.wait_bulk(op_id)["url"]).status_code == 200


def test_operation_in_progress_and_access_denied(shop: Shop) -> None:
    _fault(shop, "operation_in_progress", count=1)
    out = shop.gql(
        "mutation($q: String!) { bulkOperationRunQuery(query: $q) { bulkOperation { id } userErrors { code } } }",
        {"q": CORE},
    )
    assert out["data"]["bulkOperationRunQuery"]["userErrors"] == [{"code": "OPERATION_IN_PROGRESS"}]
    _fault(shop, "access_denied", count=1)
    op = shop.wait_bulk(shop.run_bulk(CORE))
    assert op["status"] == "FAILED"
    assert op["errorCode"] == "ACCESS_DENIED"
    _fault(shop, "access_denied", count=1)
    denied = shop.gql("{ products(first: 1) { nodes { id } } }")
    assert denied["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"


def test_a_ratio_fires_on_that_share_of_calls_the_same_way_for_the_same_seed(shop: Shop) -> None:
    def pattern(seed: int) -> list[int]:
        _fault(shop, "http_5xx", ratio=0.2, seed=seed)
        statuses = [_post(shop).status_code for _ in range(200)]
        shop.control("DELETE", "/faults?kind=http_5xx")
        return statuses

    first = pattern(7)
    assert set(first) == {200, 503}
    assert 20 <= first.count(503) <= 60  # 20% of 200 calls, give or take the draw
    assert pattern(7) == first
    assert pattern(8) != first
    refused = shop.http.post(
        "/_emulator/shops/faulty/faults", json={"kind": "http_5xx", "ratio": 1.5}
    )
    assert refused.status_code == 400
    assert "ratio" in refused.text
    refused = shop.http.post(
        "/_emulator/shops/faulty/faults", json={"kind": "http_5xx", "ratio": "often"}
    )
    assert refused.status_code == 400
    assert "ratio" in refused.text
