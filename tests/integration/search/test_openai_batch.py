"""The OpenAI Batch API provider on real servers: embedded PostgreSQL and Redis, the OpenAI
stand-in over HTTP (it speaks the documented Files/Batches/Embeddings protocol), and the real
`openai` SDK pointed at it through its base URL."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool
from pydantic import SecretStr

from neanelu.db.pool import Conn, tenant_scope
from neanelu.db.rows import fetch_all
from neanelu.handles import EmbedJob, embed_job
from neanelu.queue import DeadJob, Fatal, Resources
from neanelu.queue.registry import Registry
from neanelu.queue.settings import AI_BATCH
from neanelu.queue.worker import Worker
from neanelu.runtime import Runtime
from neanelu.search.openai_batch import BatchLimits
from neanelu.search.openai_provider import OpenAIOptions, OpenAIProvider
from neanelu.search.openai_standin import RunningStandIn, standin_vector
from neanelu.search.provider import EmbeddingError
from neanelu.semantic import tasks as search_tasks
from neanelu.semantic.batches import BatchOptions, BatchProgress, run_batch_job
from neanelu.semantic.documents import PRODUCT_COLUMNS, ProductSource, product_text
from tests.databases import TestDatabase
from tests.factories import create_shop
from tests.integration.search.catalog import insert_catalog
from tests.service.support import (
    OPENAI_TEST_KEY,
    RunJob,
    build_runtime,
    close_runtime,
    make_settings,
)

MODEL = "text-embedding-3-small"
KEY = OPENAI_TEST_KEY


@pytest.fixture
async def provider(openai_standin: RunningStandIn) -> AsyncIterator[OpenAIProvider]:
    """The provider on the real SDK, pointed at the stand-in."""
    made = _provider(openai_standin)
    yield made
    await made.aclose()


def _provider(openai_standin: RunningStandIn, key: str = KEY) -> OpenAIProvider:
    return OpenAIProvider(
        OpenAIOptions(
            api_key=SecretStr(key),
            model=MODEL,
            dimension=1536,
            base_url=openai_standin.base_url,
            max_retries=0,
        )
    )


async def _shop_with_catalog(pool: AsyncConnectionPool[Conn]) -> uuid.UUID:
    shop = await create_shop(pool)
    async with tenant_scope(pool, shop) as conn:
        await insert_catalog(conn, shop)
    return shop


async def _until_done(
    pool: AsyncConnectionPool[Conn],
    provider: OpenAIProvider,
    shop: uuid.UUID,
    job_id: str,
    options: BatchOptions,
    **kwargs: object,
) -> tuple[BatchProgress, int]:
    """Step the job as the worker would after each deferral; returns the last step and the count."""
    for steps in range(1, 40):
        progress = await run_batch_job(
            pool,
            provider,
            shop,
            job_id,
            source="manual",
            options=options,
            **kwargs,  # type: ignore[arg-type]
        )
        if progress.done:
            return progress, steps
    raise AssertionError("the batch run never finished")


async def _expected_vectors(
    pool: AsyncConnectionPool[Conn], provider: OpenAIProvider, shop: uuid.UUID
) -> dict[int, np.ndarray]:
    """What the stand-in gives for each product's embedding text: the right vector for it."""
    async with tenant_scope(pool, shop) as conn:
        rows = await fetch_all(
            conn, ProductSource, sql.SQL("SELECT {} FROM products").format(PRODUCT_COLUMNS)
        )
    texts = [product_text(r, (), provider.max_tokens) for r in rows]
    return {t.shopify_id: standin_vector(MODEL, t.text.embedding, 1536) for t in texts}


async def _stored(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID
) -> dict[int, tuple[np.ndarray, str]]:
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute(
            "SELECT product_shopify_id, embedding::text, embedded_at::text, model, dimension "
            "FROM embeddings"
        )
        out = {}
        for pid, vec, at, model, dim in await cur.fetchall():
            assert (model, dim) == (MODEL, 1536)
            out[pid] = (np.asarray(json.loads(vec), dtype=np.float32), at)
        return out


def _assert_right_vectors(
    stored: dict[int, tuple[np.ndarray, str]], expected: dict[int, np.ndarray]
) -> None:
    assert set(stored) == set(expected)
    for pid, (vector, _) in stored.items():
        # Each product holds its own text's vector, not a neighbour's (cosine of two random
        # 1536-d unit vectors is ~0).
        assert float(np.dot(vector, expected[pid])) > 0.9999, pid


async def _batches(pool: AsyncConnectionPool[Conn], shop: uuid.UUID) -> list[tuple[str, int]]:
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute("SELECT status, requests FROM embedding_batches ORDER BY id")
        return list(await cur.fetchall())


async def test_out_of_order_output_joined_by_custom_id_and_unchanged_not_reembedded(
    app_pool: AsyncConnectionPool[Conn], openai_standin: RunningStandIn, provider: OpenAIProvider
) -> None:
    shop = await _shop_with_catalog(app_pool)
    # 2 products per request, 2 requests per file: 3 requests in 2 batches.
    options = BatchOptions(request_inputs=2, limits=BatchLimits(requests=2))
    _, steps = await _until_done(app_pool, provider, shop, "job-1", options)
    assert steps > 3, "the run came back several times (polls), it did not wait in one call"
    assert openai_standin.state.faults.reverse_output
    _assert_right_vectors(
        await _stored(app_pool, shop), await _expected_vectors(app_pool, provider, shop)
    )
    assert await _batches(app_pool, shop) == [("completed", 2), ("completed", 1)]
    # The documented request shape went over the wire.
    first = next(iter(openai_standin.state.batches))
    line = openai_standin.state.batch_inputs(first)[0]
    assert (line["method"], line["url"]) == ("POST", "/v1/embeddings")
    assert (line["body"]["model"], line["body"]["encoding_format"]) == (MODEL, "base64")
    assert len(line["body"]["input"]) == 2
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT status, queued, embedded, skipped, failed, tokens > 0, provider FROM embedding_runs"
        )
        assert await cur.fetchall() == [("completed", 6, 6, 0, 0, True, "openai")]

    # Another shop sees none of this run's records (forced RLS on the new tables).
    stranger = await create_shop(app_pool)
    async with tenant_scope(app_pool, stranger) as conn:
        for table in ("embedding_batches", "embedding_requests", "embedding_runs"):
            cur = await conn.execute(f"SELECT count(*) FROM {table}")
            assert await cur.fetchone() == (0,), table

    before = await _stored(app_pool, shop)
    calls = len(openai_standin.state.batches)
    again, _ = await _until_done(app_pool, provider, shop, "job-2", options)
    assert again.done
    assert len(openai_standin.state.batches) == calls, "nothing changed: no new batch"
    after = await _stored(app_pool, shop)
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in before.items()}
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT embedded, skipped FROM embedding_runs WHERE job_id = 'job-2'"
        )
        assert await cur.fetchall() == [(0, 6)]

    # The query-time path: one synchronous embeddings call, the same vector for the same text.
    query = await asyncio.to_thread(provider.embed, ["warm winter coat"])
    assert float(np.dot(query.vectors[0], standin_vector(MODEL, "warm winter coat", 1536))) > 0.9999
    assert "POST /v1/embeddings" in openai_standin.state.calls


async def test_failed_lines_are_read_from_the_error_file_and_retried(
    app_pool: AsyncConnectionPool[Conn], openai_standin: RunningStandIn, provider: OpenAIProvider
) -> None:
    shop = await _shop_with_catalog(app_pool)
    # The knife's request fails once (then succeeds); the coat's fails every time.
    openai_standin.state.faults.fail_markers.update({"chef knife": 1, "Wool winter coat": 99})
    options = BatchOptions(request_inputs=1, max_attempts=2)
    await _until_done(app_pool, provider, shop, "job-f", options)
    stored = await _stored(app_pool, shop)
    expected = await _expected_vectors(app_pool, provider, shop)
    coat = 1005
    assert coat not in stored
    _assert_right_vectors(stored, {k: v for k, v in expected.items() if k != coat})
    # First batch: 6 requests, two failed; the retry (attempt 2 of 2) holds those two.
    assert await _batches(app_pool, shop) == [("completed", 6), ("completed", 2)]
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute(
            "SELECT state, attempts, error FROM embedding_requests WHERE state <> 'done'"
        )
        assert await cur.fetchall() == [
            ("failed", 2, "HTTP 500: The server had an error processing your request.")
        ]
        cur = await conn.execute("SELECT status, embedded, failed, error FROM embedding_runs")
        assert await cur.fetchall() == [
            ("completed", 5, 1, "1 product(s) not embedded after 2 attempts")
        ]


async def test_an_expired_batch_has_what_it_left_undone_resubmitted(
    app_pool: AsyncConnectionPool[Conn], openai_standin: RunningStandIn, provider: OpenAIProvider
) -> None:
    shop = await _shop_with_catalog(app_pool)
    openai_standin.state.faults.expire_after = 1  # one request of three done, then the window ends
    await _until_done(app_pool, provider, shop, "job-e", BatchOptions(request_inputs=2))
    assert await _batches(app_pool, shop) == [("expired", 3), ("completed", 2)]
    _assert_right_vectors(
        await _stored(app_pool, shop), await _expected_vectors(app_pool, provider, shop)
    )
    # The expired batch's error file named the two requests it never ran.
    expired = next(iter(openai_standin.state.batches.values()))
    errors = openai_standin.state.files[expired["error_file_id"]].content.decode().splitlines()
    assert [json.loads(e)["error"]["code"] for e in errors] == ["batch_expired"] * 2


async def test_a_changed_product_keeps_its_newer_vector(
    app_pool: AsyncConnectionPool[Conn], openai_standin: RunningStandIn, provider: OpenAIProvider
) -> None:
    shop = await create_shop(app_pool)
    async with tenant_scope(app_pool, shop) as conn:
        ids = await insert_catalog(conn, shop)
    openai_standin.state.faults.hold = True
    options = BatchOptions(request_inputs=6)
    for _ in range(3):
        await run_batch_job(app_pool, provider, shop, "job-s", source="manual", options=options)
    async with tenant_scope(app_pool, shop) as conn:
        await conn.execute(
            "UPDATE products SET title = 'Brass teapot' WHERE shopify_id = %s", (ids[3],)
        )
    openai_standin.state.faults.hold = False
    await _until_done(app_pool, provider, shop, "job-s", options)
    stored = await _stored(app_pool, shop)
    # The result for the old title is dropped; the change's own job will embed the new one.
    assert ids[3] not in stored
    assert len(stored) == 5


async def test_the_worker_runs_other_jobs_while_a_batch_is_in_progress(
    database: TestDatabase, redis_url: str, key_prefix: str, openai_standin: RunningStandIn
) -> None:
    settings = make_settings(
        OPENAI_API_KEY=KEY, OPENAI_BASE_URL=openai_standin.base_url, OPENAI_BATCH_POLL_S=0.1
    )
    rt: Runtime = await build_runtime(settings, database, redis_url, key_prefix)
    registry = Registry()
    search_tasks.register(registry)
    worker = Worker(
        rt.queues, registry, [AI_BATCH], concurrency=1, idle_max_s=0.05, resources={Runtime: rt}
    )
    stop = asyncio.Event()
    running = asyncio.create_task(worker.run(stop))
    try:
        busy, other = await create_shop(rt.pool), await create_shop(rt.pool)
        async with tenant_scope(rt.pool, busy) as conn:
            await insert_catalog(conn, busy)
        openai_standin.state.faults.hold = True
        await embed_job.enqueue(
            rt.queues, EmbedJob(shop_id=str(busy), source="manual"), group=busy, job_id="busy"
        )
        await _wait(lambda: _run_status(rt, busy, "busy"), "running")
        await _wait(lambda: _batch_status(rt, busy), "in_progress")
        # One slot, and the busy shop's batch holds for as long as the stand-in says: a job
        # that slept on it would keep this one from ever starting.
        await embed_job.enqueue(
            rt.queues,
            EmbedJob(shop_id=str(other), source="webhook", product_ids=[42]),
            group=other,
            job_id="other",
        )
        await _wait(lambda: _run_status(rt, other, "other"), "completed")
        assert await _batch_status(rt, busy) == "in_progress"
        assert await _run_status(rt, busy, "busy") == "running"
        openai_standin.state.faults.hold = False
        await _wait(lambda: _run_status(rt, busy, "busy"), "completed")
        async with tenant_scope(rt.pool, busy) as conn:
            cur = await conn.execute("SELECT count(*) FROM embeddings")
            assert await cur.fetchone() == (6,)
    finally:
        stop.set()
        await running
        await close_runtime(rt)


async def _run_status(rt: Runtime, shop: uuid.UUID, job_id: str) -> str | None:
    async with tenant_scope(rt.pool, shop) as conn:
        cur = await conn.execute("SELECT status FROM embedding_runs WHERE job_id = %s", (job_id,))
        row = await cur.fetchone()
        return None if row is None else str(row[0])


async def _batch_status(rt: Runtime, shop: uuid.UUID) -> str | None:
    async with tenant_scope(rt.pool, shop) as conn:
        cur = await conn.execute("SELECT status FROM embedding_batches ORDER BY id LIMIT 1")
        row = await cur.fetchone()
        return None if row is None else str(row[0])


async def _wait(read: object, wanted: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = await read()  # type: ignore[operator]
        if last == wanted:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited for {wanted!r}, last saw {last!r}")


async def test_the_key_never_reaches_logs_or_errors(
    app_pool: AsyncConnectionPool[Conn],
    openai_standin: RunningStandIn,
    provider: OpenAIProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shop = await _shop_with_catalog(app_pool)
    await _until_done(app_pool, provider, shop, "job-k", BatchOptions())
    wrong = f"sk-wrong-{uuid.uuid4().hex}"
    refusing = _provider(openai_standin, wrong)
    with pytest.raises(EmbeddingError) as refused:
        await asyncio.to_thread(refusing.embed, ["x"])
    await refusing.aclose()
    assert "HTTP 401" in str(refused.value)
    settings = make_settings(OPENAI_API_KEY=KEY)
    seen = caplog.text + str(refused.value) + repr(settings) + str(settings.model_dump())
    for key in (KEY, wrong):
        # Not the key, nor the end of it that OpenAI's own 401 message quotes.
        assert key not in seen
    # OpenAI's 401 message quotes the wrong key's last four characters: scrubbed.
    assert f"{wrong[-4:]}." not in str(refused.value)
    assert "embedding batch" in caplog.text  # the run did log, without the key


async def test_a_refused_key_fails_the_job_and_its_run(
    database: TestDatabase,
    redis_url: str,
    key_prefix: str,
    openai_standin: RunningStandIn,
    run_job: RunJob,
) -> None:
    wrong = f"sk-wrong-{uuid.uuid4().hex}"
    settings = make_settings(OPENAI_API_KEY=wrong, OPENAI_BASE_URL=openai_standin.base_url)
    rt = await build_runtime(settings, database, redis_url, key_prefix)
    try:
        shop = await _shop_with_catalog(rt.pool)
        with pytest.raises(Fatal) as failed:
            await run_job(rt, embed_job, EmbedJob(shop_id=str(shop), source="manual"))
        assert "HTTP 401" in str(failed.value)
        assert wrong not in str(failed.value)
        async with tenant_scope(rt.pool, shop) as conn:
            cur = await conn.execute("SELECT status, error FROM embedding_runs")
            [(status, error)] = await cur.fetchall()
        assert status == "failed"
        assert error.startswith("OpenAI file upload failed: HTTP 401")
        assert openai_standin.state.batches == {}, "nothing was created with a refused key"
    finally:
        await close_runtime(rt)


async def test_a_job_the_queue_gave_up_on_fails_its_run_and_frees_its_products(
    database: TestDatabase, redis_url: str, key_prefix: str, openai_standin: RunningStandIn
) -> None:
    settings = make_settings(OPENAI_API_KEY=KEY, OPENAI_BASE_URL=openai_standin.base_url)
    rt = await build_runtime(settings, database, redis_url, key_prefix)
    provider = _provider(openai_standin)
    try:
        shop = await _shop_with_catalog(rt.pool)
        openai_standin.state.faults.hold = True
        stuck = await run_batch_job(rt.pool, provider, shop, "stuck", source="manual")
        assert not stuck.done
        registry = Registry()
        search_tasks.register(registry)
        bound = registry.get(embed_job.name)
        assert bound is not None
        assert bound.on_dead is not None
        payload = EmbedJob(shop_id=str(shop), source="manual")
        dead = DeadJob(
            id="stuck",
            queue=AI_BATCH,
            group=str(shop),
            task=embed_job.name,
            payload=b"{}",
            attempts=25,
            error="Retry: OpenAI batch poll failed: APIConnectionError",
        )
        await bound.on_dead(Resources({Runtime: rt}), payload, dead)
        assert await _run_status(rt, shop, "stuck") == "failed"
        # The next run asks for every product again: none is "in flight" in a dead run.
        openai_standin.state.faults.hold = False
        await _until_done(rt.pool, provider, shop, "next", BatchOptions())
        async with tenant_scope(rt.pool, shop) as conn:
            cur = await conn.execute("SELECT error FROM embedding_runs WHERE job_id = 'stuck'")
            [(error,)] = await cur.fetchall()
            cur = await conn.execute("SELECT count(*) FROM embeddings")
            assert await cur.fetchone() == (6,)
        assert error.startswith("embedding job stuck dead-lettered after 25 attempt(s)")
    finally:
        await provider.aclose()
        await close_runtime(rt)


async def test_a_batch_that_fails_validation_is_sent_again(
    app_pool: AsyncConnectionPool[Conn], openai_standin: RunningStandIn, provider: OpenAIProvider
) -> None:
    shop = await _shop_with_catalog(app_pool)
    openai_standin.state.faults.refuse_next = True
    await _until_done(app_pool, provider, shop, "job-v", BatchOptions(request_inputs=3))
    assert await _batches(app_pool, shop) == [("failed", 2), ("completed", 2)]
    _assert_right_vectors(
        await _stored(app_pool, shop), await _expected_vectors(app_pool, provider, shop)
    )
    async with tenant_scope(app_pool, shop) as conn:
        cur = await conn.execute("SELECT error FROM embedding_batches WHERE status = 'failed'")
        assert await cur.fetchall() == [
            ("invalid_request: the batch input file could not be read",)
        ]
