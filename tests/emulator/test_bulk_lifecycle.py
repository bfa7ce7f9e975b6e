"""Bulk operations as Shopify runs them: CREATED, RUNNING with a growing objectCount, the endings, and
bulk mutations over staged uploads; result links under a configurable public base URL."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from shopify_emulator import EmulatorConfig, ShopConfig
from shopify_emulator.__main__ import build_config, parser
from shopify_emulator.clock import ManualClock
from tests.emulator.clients import Connect, MakeEmulator, Shop

CORE = "{ products { edges { node { id title variants { edges { node { id sku } } } } } } }"
RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
  bulkOperation { id status objectCount url } userErrors { field message code } } }"""
STAGE = """mutation($input: [StagedUploadInput!]!) { stagedUploadsCreate(input: $input) {
  stagedTargets { url resourceUrl parameters { name value } } userErrors { field message } } }"""
RUN_MUTATION = """mutation($m: String!, $path: String!) { bulkOperationRunMutation(mutation: $m, stagedUploadPath: $path) {
  bulkOperation { id status type } userErrors { field message code } } }"""
UPDATE = """mutation call($product: ProductUpdateInput!) { productUpdate(product: $product) {
  product { id title tags } userErrors { field message } } }"""
METAFIELDS = """mutation call($metafields: [MetafieldsSetInput!]!) { metafieldsSet(metafields: $metafields) {
  metafields { key namespace value } userErrors { field message code } } }"""


@pytest.fixture
def slow(make_emulator: MakeEmulator, connect: Connect) -> Shop:
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="slow", products=400)], bulk_lines_per_s=1500)
    )
    return connect(emulator, "slow")


@pytest.fixture
def fresh(make_emulator: MakeEmulator, connect: Connect) -> Shop:
    emulator = make_emulator(EmulatorConfig(shops=[ShopConfig(name="fresh", products=30)]))
    return connect(emulator, "fresh")


def test_created_then_running_with_growing_count_then_completed(slow: Shop) -> None:
    run = slow.gql(RUN, {"q": CORE})["data"]["bulkOperationRunQuery"]
    op = run["bulkOperation"]
    # Shopify's answer: the new operation is CREATED, with nothing counted and no file.
    assert op["status"] == "CREATED"
    assert op["objectCount"] == "0"
    assert op["url"] is None
    counts = []
    statuses = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = slow.gql(
            "query($id: ID!) { bulkOperation(id: $id) { status objectCount } }", {"id": op["id"]}
        )["data"]["bulkOperation"]
        statuses.append(now["status"])
        counts.append(int(now["objectCount"]))
        if now["status"] == "COMPLETED":
            break
        time.sleep(0.1)
    assert statuses[-1] == "COMPLETED"
    assert "RUNNING" in statuses
    running = [c for s, c in zip(statuses, counts, strict=True) if s == "RUNNING"]
    assert running == sorted(running)
    assert len(set(running)) > 2
    assert running[-1] <= counts[-1]


def test_cancel_before_the_writer_starts(fresh: Shop) -> None:
    out = fresh.gql(
        "mutation($q: String!) { a: bulkOperationRunQuery(query: $q) { bulkOperation { id status } } }",
        {"q": CORE},
    )
    op_id = out["data"]["a"]["bulkOperation"]["id"]
    fresh.gql(
        "mutation($id: ID!) { bulkOperationCancel(id: $id) { userErrors { message } } }",
        {"id": op_id},
    )
    assert fresh.wait_bulk(op_id)["status"] in ("CANCELED", "COMPLETED")


def test_timeout_on_request(fresh: Shop) -> None:
    fresh.control(
        "POST", "/faults", json={"kind": "bulk_timeout", "count": 1, "params": {"after_lines": 5}}
    )
    op = fresh.wait_bulk(fresh.run_bulk(CORE))
    assert op["status"] == "FAILED"
    assert op["errorCode"] == "TIMEOUT"
    assert op["url"] is None
    assert op["objectCount"] == "5"
    assert len(httpx.get(op["partialDataUrl"]).text.splitlines()) == 5


def test_expired_on_request(fresh: Shop) -> None:
    fresh.control("POST", "/faults", json={"kind": "bulk_expired", "count": 1})
    op = fresh.wait_bulk(fresh.run_bulk(CORE))
    assert op["status"] == "EXPIRED"
    assert op["url"] is None
    assert int(op["objectCount"]) > 30
    again = fresh.wait_bulk(fresh.run_bulk(CORE))
    assert again["status"] == "COMPLETED"
    assert again["url"]


def test_results_expire_with_their_links(make_emulator: MakeEmulator, connect: Connect) -> None:
    clock = ManualClock()
    emulator = make_emulator(
        EmulatorConfig(
            shops=[ShopConfig(name="short", products=5)], bulk_url_ttl_s=3600, clock=clock
        )
    )
    shop = connect(emulator, "short")
    op_id = shop.run_bulk(CORE)
    assert shop.wait_bulk(op_id)["status"] == "COMPLETED"
    clock.advance(3600)
    # Exactly at the links' lifetime the result is still there; a second later it is gone.
    assert shop.wait_bulk(op_id)["status"] == "COMPLETED"
    clock.advance(1)
    later = shop.wait_bulk(op_id)
    assert later["status"] == "EXPIRED"
    assert later["url"] is None


def _stage(shop: Any, lines: list[dict[str, Any]], method: str) -> str:
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    target = shop.gql(
        STAGE,
        {
            "input": [
                {
                    "resource": "BULK_MUTATION_VARIABLES",
                    "filename": "bulk_op_vars.jsonl",
                    "mimeType": "text/jsonl",
                    "httpMethod": method,
                }
            ]
        },
    )["data"]["stagedUploadsCreate"]
    assert target["userErrors"] == []
    staged = target["stagedTargets"][0]
    params = {p["name"]: p["value"] for p in staged["parameters"]}
    if method == "POST":
        # A real HTTP multipart upload, the form fields first and the file last, as clients send it.
        response = httpx.post(
            staged["url"], data=params, files={"file": ("bulk_op_vars.jsonl", body)}
        )
        assert response.status_code == 201, response.text
        assert "<Key>" in response.text
        return str(params["key"])
    response = httpx.put(staged["url"], content=body, headers={"Content-Type": "text/jsonl"})
    assert response.status_code == 200, response.text
    path = staged["url"].split("/shopify-staged-uploads/", 1)[1].split("?", 1)[0]
    return httpx.URL("/" + path).path.lstrip("/")


@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_bulk_mutation_over_a_staged_upload(fresh: Shop, method: str) -> None:
    products = fresh.gql("{ products(first: 3) { nodes { id } } }")["data"]["products"]["nodes"]
    lines = [
        {"product": {"id": p["id"], "title": f"Bulk {n}", "tags": ["bulk"]}}
        for n, p in enumerate(products)
    ]
    lines.append({"product": {"id": "gid://shopify/Product/1", "title": "nobody"}})
    path = _stage(fresh, lines, method)
    run = fresh.gql(RUN_MUTATION, {"m": UPDATE, "path": path})["data"]["bulkOperationRunMutation"]
    assert run["userErrors"] == []
    assert run["bulkOperation"]["status"] == "CREATED"
    assert run["bulkOperation"]["type"] == "MUTATION"
    op = fresh.wait_bulk(run["bulkOperation"]["id"])
    assert op["status"] == "COMPLETED"
    assert op["objectCount"] == "4"
    results = [json.loads(line) for line in httpx.get(op["url"]).text.splitlines()]
    assert [r["__lineNumber"] for r in results] == [0, 1, 2, 3]
    assert [r["data"]["productUpdate"]["product"]["title"] for r in results[:3]] == [
        "Bulk 0",
        "Bulk 1",
        "Bulk 2",
    ]
    assert (
        results[3]["data"]["productUpdate"]["userErrors"][0]["message"] == "Product does not exist"
    )
    now = fresh.gql(
        "query($id: ID!) { product(id: $id) { title tags } }", {"id": products[1]["id"]}
    )
    assert now["data"]["product"] == {"title": "Bulk 1", "tags": ["bulk"]}


def test_bulk_metafields_set_and_errors(fresh: Shop) -> None:
    product = fresh.gql("{ products(first: 1) { nodes { id } } }")["data"]["products"]["nodes"][0][
        "id"
    ]
    path = _stage(
        fresh,
        [
            {
                "metafields": [
                    {
                        "ownerId": product,
                        "namespace": "custom",
                        "key": "bulk_key",
                        "value": "v1",
                        "type": "single_line_text_field",
                    }
                ]
            }
        ],
        "POST",
    )
    op = fresh.wait_bulk(
        fresh.gql(RUN_MUTATION, {"m": METAFIELDS, "path": path})["data"][
            "bulkOperationRunMutation"
        ]["bulkOperation"]["id"]
    )
    result = json.loads(httpx.get(op["url"]).text)
    assert result["data"]["metafieldsSet"]["metafields"] == [
        {"key": "bulk_key", "namespace": "custom", "value": "v1"}
    ]
    read = fresh.gql(
        'query($id: ID!) { product(id: $id) { metafield(namespace: "custom", key: "bulk_key") { value } } }',
        {"id": product},
    )
    assert read["data"]["product"]["metafield"] == {"value": "v1"}
    missing = fresh.gql(RUN_MUTATION, {"m": METAFIELDS, "path": "tmp/1/bulk/none/x.jsonl"})
    assert missing["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"] == "NO_SUCH_FILE"
    query_instead = fresh.gql(RUN_MUTATION, {"m": "{ shop { id } }", "path": path})
    assert (
        query_instead["data"]["bulkOperationRunMutation"]["userErrors"][0]["code"]
        == "INVALID_MUTATION"
    )


def test_staged_upload_refuses_a_forged_key(fresh: Shop) -> None:
    target = fresh.gql(
        STAGE,
        {
            "input": [
                {
                    "resource": "BULK_MUTATION_VARIABLES",
                    "filename": "v.jsonl",
                    "mimeType": "text/jsonl",
                    "httpMethod": "POST",
                }
            ]
        },
    )["data"]["stagedUploadsCreate"]["stagedTargets"][0]
    params = {p["name"]: p["value"] for p in target["parameters"]}
    params["key"] = params["key"].replace("v.jsonl", "other.jsonl")
    response = httpx.post(target["url"], data=params, files={"file": ("v.jsonl", b"{}\n")})
    assert response.status_code == 403
    assert b"SignatureDoesNotMatch" in response.content


def test_public_base_url_from_the_command_line(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    config = build_config(
        parser().parse_args(
            ["--shops", "cli:5", "--public-base-url", "https://storage.googleapis.com/"]
        )
    )
    assert config.public_base_url == "https://storage.googleapis.com"
    shop = connect(make_emulator(config), "cli")
    url = shop.wait_bulk(shop.run_bulk(CORE))["url"]
    assert url.startswith(
        "https://storage.googleapis.com/shopify-tiers-assets-prod-us-east1/bulk-operation-outputs/"
    )
    # Behind a proxy that sends the storage host to the emulator, the same path and query resolve.
    local = shop.emulator.base_url + url.removeprefix("https://storage.googleapis.com")
    assert httpx.get(local).status_code == 200


def test_rest_shop_created_at_in_the_shop_offset(fresh: Shop) -> None:
    shop = fresh.http.get(
        "/admin/api/2026-01/shop.json", headers={"X-Shopify-Access-Token": fresh.token}
    )
    created = shop.json()["shop"]["created_at"]
    assert created == "2019-01-01T02:00:00+02:00"
    graphql = fresh.gql("{ shop { createdAt } }")["data"]["shop"]["createdAt"]
    assert graphql == "2019-01-01T00:00:00Z"  # the same instant, in UTC
