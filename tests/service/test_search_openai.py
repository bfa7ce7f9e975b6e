"""`GET /api/search` with the OpenAI provider: the query is embedded by one embeddings call to
the stand-in (over HTTP, the real SDK), the catalog by a Batch API run; a refused query embedding
answers 503 without the key; a slow query embedding holds no transaction open."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import psycopg
import pytest

from neanelu.config import Settings
from neanelu.db.embedded import APP_ROLE
from neanelu.db.pool import tenant_scope
from neanelu.runtime import Runtime
from neanelu.search.openai_batch import BatchProvider
from neanelu.search.openai_standin import RunningStandIn
from neanelu.search.providers import provider_for
from neanelu.semantic.batches import run_batch_job
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog
from tests.service.support import OPENAI_TEST_KEY, make_settings, session_token

KEY = OPENAI_TEST_KEY


@pytest.fixture
def settings(openai_standin: RunningStandIn) -> Settings:
    return make_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=openai_standin.base_url)


async def test_search_embeds_the_query_through_openai(
    client: httpx.AsyncClient, runtime: Runtime, openai_standin: RunningStandIn
) -> None:
    shop = await create_shop(runtime.pool, "acme.myshopify.com")
    async with tenant_scope(runtime.pool, shop) as conn:
        ids = await insert_catalog(conn, shop)
    provider = provider_for(runtime.settings)
    assert isinstance(provider, BatchProvider)
    for _ in range(10):
        if (await run_batch_job(runtime.pool, provider, shop, "api", source="manual")).done:
            break
    auth = {"Authorization": f"Bearer {session_token('acme.myshopify.com')}"}
    found = await client.get("/api/search", params={"q": "hiking boots"}, headers=auth)
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["model"] == "text-embedding-3-small"
    assert body["hits"][0]["product"]["id"] == str(ids[0])
    # The stand-in's vectors carry no meaning, but every product has one to rank.
    assert {h["vector"]["rank"] for h in body["hits"] if h["vector"]} >= {1}
    assert "POST /v1/embeddings" in openai_standin.state.calls

    openai_standin.state.api_key = f"sk-other-{uuid.uuid4().hex}"  # the key is refused from now on
    refused = await client.get("/api/search", params={"q": "boots"}, headers=auth)
    assert refused.status_code == 503
    assert "HTTP 401" in refused.text
    assert KEY not in refused.text
    assert KEY[-4:] + "." not in refused.text


async def test_a_slow_query_embedding_holds_no_transaction_open(
    client: httpx.AsyncClient,
    runtime: Runtime,
    database: TestDatabase,
    openai_standin: RunningStandIn,
) -> None:
    """The query is embedded before the tenant transaction opens: while OpenAI is slow to answer,
    no connection of the app sits idle in a transaction (holding a pooled connection and, under
    load, the pool itself)."""
    shop = await create_shop(runtime.pool, "slow.myshopify.com")
    async with tenant_scope(runtime.pool, shop) as conn:
        await insert_catalog(conn, shop)
    openai_standin.state.faults.embeddings_delay_s = 1.0
    openai_standin.state.calls.clear()
    auth = {"Authorization": f"Bearer {session_token('slow.myshopify.com')}"}
    search = asyncio.create_task(
        client.get("/api/search", params={"q": "hiking boots"}, headers=auth)
    )
    # The stand-in serves on a thread of its own: its call log is polled, not awaited.
    for _ in range(500):
        if "POST /v1/embeddings" in openai_standin.state.calls:
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the query was never sent to the embeddings endpoint")
    # The stand-in is now sleeping on the query's embeddings call.
    async with await psycopg.AsyncConnection.connect(database.superuser_url) as su:
        cur = await su.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND usename = %s AND state LIKE 'idle in transaction%%'",
            (APP_ROLE,),
        )
        row = await cur.fetchone()
    assert row is not None
    in_transaction = row[0]
    assert not search.done(), "the embeddings call answered before the check"
    found = await search
    assert found.status_code == 200, found.text
    assert in_transaction == 0
