"""Admin GraphQL: validation, connections and filters, calculated cost, the leaky bucket, REST shop.json."""

from __future__ import annotations

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig
from shopify_emulator.clock import ManualClock
from tests.emulator.clients import Connect, MakeEmulator, Shop


def test_validation_errors_come_from_the_schema(alpha: Shop) -> None:
    out = alpha.gql("{ products(first: 1) { nodes { noSuchField } } }")
    assert "data" not in out
    assert "noSuchField" in out["errors"][0]["message"]
    missing = alpha.gql("{ products { nodes { id } } }")
    assert missing["data"] is None
    assert "first" in missing["errors"][0]["message"]


def test_pagination_walks_every_product_once(alpha: Shop) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = alpha.gql(
            "query($a: String) { products(first: 7, after: $a) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
            {"a": after},
        )["data"]["products"]
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) == 40
    assert seen[0] == "gid://shopify/Product/8000000000000"


def test_updated_at_filter_matches_generated_timestamps(alpha: Shop) -> None:
    all_nodes = alpha.gql("{ products(first: 40) { nodes { id updatedAt } } }")["data"]["products"][
        "nodes"
    ]
    stamps = sorted(n["updatedAt"] for n in all_nodes)
    pivot = stamps[20]
    newer = alpha.gql(
        f'{{ products(first: 40, query: "updated_at:>{pivot}") {{ nodes {{ id updatedAt }} }} }}'
    )
    got = newer["data"]["products"]["nodes"]
    assert {n["id"] for n in got} == {n["id"] for n in all_nodes if n["updatedAt"] > pivot}
    assert 0 < len(got) < 40
    future = alpha.gql(
        '{ products(first: 5, query: "updated_at:>2027-01-01T00:00:00Z") { nodes { id } } }'
    )
    assert future["data"]["products"]["nodes"] == []


def test_calculated_cost_and_refund(alpha: Shop) -> None:
    # 2 + 10 * (1 node + variants connection (2 + 5 * 1 node)) = 82; `inventoryItem` adds 1 per variant.
    query = "{ products(first: 10) { edges { node { id variants(first: 5) { edges { node { id } } } } } } }"
    cost = alpha.gql(query)["extensions"]["cost"]
    assert cost["requestedQueryCost"] == 82
    # Actual: 2 + 10 products + 10 variant connections * 2 + the variants actually returned.
    variants = sum(
        len(p["variants"]["nodes"])
        for p in alpha.gql(
            "{ products(first: 10) { nodes { variants(first: 5) { nodes { id } } } } }"
        )["data"]["products"]["nodes"]
    )
    assert cost["actualQueryCost"] == 2 + 10 + 10 * 2 + variants
    status = cost["throttleStatus"]
    assert status["maximumAvailable"] == 2000.0
    assert status["restoreRate"] == 100.0
    assert (
        alpha.gql("{ shop { id plan { displayName } } }")["extensions"]["cost"][
            "requestedQueryCost"
        ]
        == 2
    )
    mutation = alpha.gql(
        'mutation { webhookSubscriptionDelete(id: "gid://shopify/WebhookSubscription/1") { userErrors { message } } }'
    )
    assert mutation["extensions"]["cost"]["requestedQueryCost"] == 10


def test_plus_plan_bucket(emulator: RunningEmulator, connect: Connect) -> None:
    beta = connect(emulator, "beta")
    status = beta.gql("{ shop { id } }")["extensions"]["cost"]["throttleStatus"]
    assert status["maximumAvailable"] == 20000.0
    assert status["restoreRate"] == 1000.0


def test_max_cost_exceeded(alpha: Shop) -> None:
    out = alpha.gql(
        "{ products(first: 250) { nodes { id variants(first: 10) { nodes { id } } } } }"
    )
    assert out["errors"][0]["extensions"]["code"] == "MAX_COST_EXCEEDED"
    assert out["extensions"]["cost"]["requestedQueryCost"] == 2 + 250 * (1 + 2 + 10)
    assert "data" not in out


def test_bucket_drains_throttles_and_restores(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    clock = ManualClock()
    emulator = make_emulator(
        EmulatorConfig(
            shops=[ShopConfig(name="tight", products=30, bucket_size=100, restore_rate=50)],
            clock=clock,
        )
    )
    shop = connect(emulator, "tight")
    query = "{ products(first: 28) { nodes { id } } }"  # requested 30, actual 30
    first = shop.gql(query)["extensions"]["cost"]
    assert first["requestedQueryCost"] == 30
    assert 69 <= first["throttleStatus"]["currentlyAvailable"] <= 71
    shop.gql(query)
    shop.gql(query)
    throttled = shop.gql(query)
    assert throttled["errors"][0]["extensions"]["code"] == "THROTTLED"
    assert throttled["extensions"]["cost"]["actualQueryCost"] is None
    assert throttled["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"] < 30
    clock.advance(0.5)  # 50 points/s restores 25 points
    assert "errors" not in shop.gql(query)
    # Buckets are per app: the other app's token still has a full bucket.
    other = shop.mint(client_id="other-client-id")
    assert (
        shop.gql(query, token=other)["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        >= 69
    )
    # The control API reports what each app's bucket was used for (a drill's budget figure):
    # four calls kept 30 points each, one was refused, the level fell to 5 at its lowest (10 left,
    # 25 restored, 30 taken).
    usage = shop.control("GET", "")["usage"]
    assert sorted(u["points_spent"] for u in usage.values()) == [30, 120]
    main = next(u for u in usage.values() if u["points_spent"] == 120)
    assert main["refused"] == 1
    assert 4 <= main["lowest_available"] <= 6
    shop.control("POST", "/faults", json={"kind": "throttled", "count": 1})
    assert shop.gql(query)["errors"][0]["extensions"]["code"] == "THROTTLED"
    after = next(u for u in shop.control("GET", "")["usage"].values() if u["refused"])
    assert after["refused"] == 2
    assert after["points_spent"] == 120


def test_rest_shop_json_with_call_limit(alpha: Shop) -> None:
    token = alpha.mint()
    headers = {"X-Shopify-Access-Token": token}
    first = alpha.http.get("/admin/api/2026-01/shop.json", headers=headers)
    assert first.json()["shop"]["myshopify_domain"] == "alpha.myshopify.com"
    assert first.headers["x-shopify-shop-api-call-limit"] == "1/40"
    second = alpha.http.get("/admin/api/2026-01/shop.json", headers=headers)
    assert second.headers["x-shopify-shop-api-call-limit"] == "2/40"


def test_versions_fall_forward(alpha: Shop) -> None:
    response = alpha.http.post(
        "/admin/api/2023-01/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"X-Shopify-Access-Token": alpha.token},
    )
    assert response.headers["x-shopify-api-version"] == "2025-07"
    assert (
        alpha.http.post(
            "/admin/api/latest/graphql.json", json={"query": "{ shop { id } }"}
        ).status_code
        == 404
    )


def test_node_lookups_and_shopify_gid_formats(alpha: Shop) -> None:
    item = alpha.gql(
        '{ product(id: "gid://shopify/Product/8000000000001") { variants(first: 1) { nodes { inventoryItem { id inventoryLevels(first: 2) { nodes { id location { id } quantities(names: ["available", "on_hand"]) { name quantity } } } } } } } }'
    )["data"]["product"]["variants"]["nodes"][0]["inventoryItem"]
    level = item["inventoryLevels"]["nodes"][1]
    item_number = item["id"].rsplit("/", 1)[1]
    assert level["id"].endswith(f"?inventory_item_id={item_number}")
    assert level["id"].startswith("gid://shopify/InventoryLevel/")
    assert level["location"]["id"] == "gid://shopify/Location/70000000001"
    # Shopify's form: the level's number is its location's, the item is in the query string.
    assert level["id"].split("?")[0].rsplit("/", 1)[1] == "70000000001"
    assert level["quantities"][0]["quantity"] == level["quantities"][1]["quantity"]
    node = alpha.gql("query($id: ID!) { node(id: $id) { __typename id } }", {"id": level["id"]})[
        "data"
    ]["node"]
    assert node == {"__typename": "InventoryLevel", "id": level["id"]}
    assert (
        alpha.gql('{ node(id: "gid://shopify/Product/9999999999999") { id } }')["data"]["node"]
        is None
    )


def test_app_owned_metafields_are_private_to_the_owner(alpha: Shop) -> None:
    query = '{ product(id: "gid://shopify/Product/8000000000000") { metafields(first: 20) { nodes { namespace key } } } }'
    owner = alpha.gql(query)["data"]["product"]["metafields"]["nodes"]
    other = alpha.gql(query, token=alpha.mint(client_id="other-client-id"))["data"]["product"][
        "metafields"
    ]["nodes"]
    owned = [m for m in owner if m["namespace"].startswith("app--1000001--")]
    assert len(owned) == 1
    assert [m for m in other if m["namespace"].startswith("app--")] == []
    assert len(other) == len(owner) - 1
    by_alias = alpha.gql(
        '{ product(id: "gid://shopify/Product/8000000000000") { metafields(first: 5, namespace: "$app:sync") { nodes { key } } } }'
    )
    assert by_alias["data"]["product"]["metafields"]["nodes"] == [{"key": "fingerprint"}]


def test_scope_is_required(alpha: Shop) -> None:
    token = alpha.mint(scopes=["read_products"])
    out = alpha.gql("{ inventoryItems(first: 1) { nodes { id } } }", token=token)
    assert out["errors"][0]["extensions"]["code"] == "ACCESS_DENIED"
