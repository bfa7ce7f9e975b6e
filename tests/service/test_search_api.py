"""`GET /api/search` under the caller's tenant: scores, reasons, filters, bad input, isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.search.providers import provider_for
from neanelu.semantic.service import embed_products
from neanelu.shops import service
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog
from tests.service.support import session_token


@pytest.fixture
async def two_shops(runtime: Runtime) -> dict[str, Any]:
    acme = await create_shop(runtime.pool, "acme.myshopify.com")
    other = await create_shop(runtime.pool, "other.myshopify.com")
    provider = provider_for(runtime.settings)
    ids = {}
    for shop, base in ((acme, 1000), (other, 2000)):
        async with tenant_scope(runtime.pool, shop) as conn:
            ids[shop] = await insert_catalog(conn, shop, base=base)
        await embed_products(runtime.pool, provider, shop, source="manual")
    async with tenant_scope(runtime.pool, other) as conn:
        key = await service.issue_api_key(conn, other)
    return {"acme": acme, "other": other, "ids": ids, "other_key": key}


async def test_search_answers_with_scores_and_reasons_for_the_callers_shop_only(
    client: httpx.AsyncClient, two_shops: dict[str, Any]
) -> None:
    acme_auth = {"Authorization": f"Bearer {session_token('acme.myshopify.com')}"}
    other_auth = {"Authorization": f"Bearer {two_shops['other_key']}"}
    acme_ids = {str(i) for i in two_shops["ids"][two_shops["acme"]]}
    other_ids = {str(i) for i in two_shops["ids"][two_shops["other"]]}

    response = await client.get("/api/search", params={"q": "hiking boots"}, headers=acme_auth)
    assert response.status_code == 200, response.text
    body = response.json()
    top = body["hits"][0]
    assert top["product"]["id"] == "1000"
    assert top["product"]["title"].startswith("Waterproof")
    assert top["matched"] == ["text", "vector"]
    # 'boots' is in the title, the type and the description.
    assert top["text"]["terms"] == ["boots", "hiking"]
    assert top["text"]["fields"] == ["title", "vendor/type/tags", "description/metafields"]
    assert top["vector"]["rank"] == 1
    assert 0 < top["vector"]["similarity"] <= 1
    assert top["score"] == pytest.approx(2 / 61)
    assert body["model"] == "sentence-transformers/all-MiniLM-L6-v2+int8v2"
    assert body["text_config"] == "simple"
    # A query with no word in common still finds by meaning, and says so.
    meaning = await client.get(
        "/api/search", params={"q": "footwear for mountains"}, headers=acme_auth
    )
    assert meaning.json()["hits"][0]["matched"] == ["vector"]

    for query in ("boots", "knife", "warm coat", "coffee"):
        for auth, own in ((acme_auth, acme_ids), (other_auth, other_ids)):
            found = await client.get("/api/search", params={"q": query}, headers=auth)
            ids = {h["product"]["id"] for h in found.json()["hits"]}
            assert ids, (query, ids - own)
            assert ids <= own, (query, ids - own)

    filtered = await client.get(
        "/api/search",
        params={"q": "kitchen", "tag": "kitchen", "price_max": "100", "limit": 5},
        headers=other_auth,
    )
    assert [h["product"]["id"] for h in filtered.json()["hits"]] == ["2003"]
    assert filtered.json()["hits"][0]["product"]["min_price"] == "39.0000"


async def test_search_refuses_bad_input_and_missing_credentials(
    client: httpx.AsyncClient, two_shops: dict[str, Any]
) -> None:
    auth = {"Authorization": f"Bearer {session_token('acme.myshopify.com')}"}
    assert (await client.get("/api/search", params={"q": "boots"})).status_code == 401
    cases = {
        "q cannot contain NUL": {"q": "bo\x00ots"},
        "more than spaces": {"q": "   "},
        "price_min is above price_max": {"q": "x", "price_min": "10", "price_max": "5"},
        "vendor cannot contain NUL": {"q": "x", "vendor": "a\x00"},
    }
    for message, params in cases.items():
        response = await client.get("/api/search", params=params, headers=auth)
        assert response.status_code == 400, params
        assert message in response.json()["detail"]
    missing = await client.get("/api/search", headers=auth)
    assert missing.status_code == 422
    assert "q" in missing.text
