"""Real servers for every test: the embedded PostgreSQL 18 and Redis (REDIS_URL when set), and the
fixtures shared across test directories (the service's runtime and ASGI client, the end-to-end
stack). Plain helpers live in modules (tests/databases.py, tests/service/support.py,
tests/service/e2e_stack.py); fixtures live here and in the conftest files under it.

`NEANELU_TEST_POSTGRES=16` runs them on PostgreSQL 16 from the `pgserver` wheel instead (`make test-pg16`),
in a data dir of its own.

Each test that needs PostgreSQL gets its own database cloned from a migrated template, so tests that
commit (COPY, RLS roles, workers in other processes) never see each other's rows.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any

import httpx
import msgspec
import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from neanelu.config import Settings
from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres, start_redis
from neanelu.db.pool import Conn, PoolSizes, create_pool
from neanelu.queue import CostLimiter, Job, JobContext, ShopBudget, TaskHandle
from neanelu.runtime import Runtime
from neanelu.search.openai_standin import RunningStandIn, start_openai_standin
from neanelu.worker.main import build_registry
from tests.databases import DATA_DIR, TEMPLATE, TestDatabase, create_database, drop_database
from tests.service.e2e_stack import Stack, e2e_config, open_stack
from tests.service.support import (
    OPENAI_TEST_KEY,
    RunJob,
    app_for,
    build_runtime,
    close_runtime,
    make_settings,
)

# A test awaiting something that never comes fails here, with the await it hung in, and the suite
# goes on. pytest-timeout's SIGALRM cannot do that for a coroutine: its exception lands in whichever
# task the event loop is stepping, often a background one, and the test hangs on (a CI run hung for
# 80 minutes that way). Its thread method stays as the backstop, above this bound (pyproject.toml).
ASYNC_TEST_TIMEOUT_S = 240.0
FIXTURE_TEARDOWN_TIMEOUT_S = 60.0


def _bounded(
    test: Callable[..., Coroutine[Any, Any, Any]], seconds: float
) -> Callable[..., Coroutine[Any, Any, Any]]:
    @functools.wraps(test)
    async def run(*args: Any, **kwargs: Any) -> Any:
        async with asyncio.timeout(seconds):
            return await test(*args, **kwargs)

    return run


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            # A test given a longer backstop (@pytest.mark.timeout) gets a bound just under it.
            marker = item.get_closest_marker("timeout")
            seconds = float(marker.args[0]) - 20 if marker else ASYNC_TEST_TIMEOUT_S
            item.obj = _bounded(item.obj, seconds)


@pytest.fixture(scope="session")
def pg_server() -> EmbeddedPostgres:
    release = os.environ.get("NEANELU_TEST_POSTGRES", "18")
    if release == "16":
        return start_postgres(DATA_DIR / "pg16", distribution="pgserver")
    if release != "18":
        raise pytest.UsageError(f"NEANELU_TEST_POSTGRES must be 16 or 18, not {release!r}")
    return start_postgres(DATA_DIR)


@pytest.fixture(scope="session")
def pg_template(pg_server: EmbeddedPostgres) -> str:
    with psycopg.connect(pg_server.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE} OWNER {OWNER_ROLE}")
    migrate.upgrade(pg_server.url(OWNER_ROLE, TEMPLATE), APP_ROLE)
    return TEMPLATE


@pytest.fixture
def database(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[TestDatabase]:
    """A fresh, migrated database for this test alone."""
    db = create_database(pg_server, pg_template)
    yield db
    drop_database(db)


@pytest.fixture
def empty_database(pg_server: EmbeddedPostgres) -> Iterator[TestDatabase]:
    """A fresh database with no migrations applied (owned by the owner role)."""
    db = create_database(pg_server, "template1")
    yield db
    drop_database(db)


@pytest.fixture
async def app_pool(database: TestDatabase) -> AsyncIterator[AsyncConnectionPool[Conn]]:
    """A pool connecting as the application role (not owner, not superuser)."""
    pool = create_pool(database.app_url, PoolSizes(1, 8), name="test-app")
    await pool.open(wait=True)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("REDIS_URL") or start_redis(DATA_DIR / "test", persist=False).url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def key_prefix() -> str:
    """A Redis key namespace no other test shares."""
    return f"t{uuid.uuid4().hex[:12]}"


# The service (tests/service, tests/console): settings, a Runtime on this test's database and
# Redis namespace, and the app over ASGI.
@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
async def runtime(
    settings: Settings, database: TestDatabase, redis_url: str, key_prefix: str
) -> AsyncIterator[Runtime]:
    rt = await build_runtime(settings, database, redis_url, key_prefix)
    yield rt
    # Teardown is outside the test's own bound (ASYNC_TEST_TIMEOUT_S): a close that waits on a
    # task the test left running would otherwise hang until the thread backstop kills the worker.
    async with asyncio.timeout(FIXTURE_TEARDOWN_TIMEOUT_S):
        await close_runtime(rt)


@pytest.fixture
def run_job() -> RunJob:
    """Run one job's handler as the worker binds it (`build_registry`), in a process whose kernel
    is `rt`, without a queue: the handler reaches the Runtime through its context, as in a
    worker."""
    registry = build_registry()

    async def run(rt: Runtime, handle: TaskHandle[Any], payload: msgspec.Struct) -> None:
        bound = registry.get(handle.name)
        assert bound is not None, f"the worker binds no handler to {handle.name}"
        job = Job(
            id=f"test-{uuid.uuid4().hex}",
            queue=handle.queue,
            group="test",
            task=handle.name,
            payload=msgspec.json.encode(payload),
            headers={},
            attempt=1,
            max_attempts=handle.max_attempts,
            token="",
            lease_deadline_ms=0,
        )

        async def extend(seconds: float | None) -> bool:
            return True

        limiter = ShopBudget(CostLimiter(rt.redis, prefix=rt.queues.prefix), job.group, 1.0)
        await bound.handler(JobContext(job, limiter, extend, {Runtime: rt}), payload)

    return run


@pytest.fixture
async def client(
    runtime: Runtime, database: TestDatabase, redis_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app_for(runtime, database, redis_url))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def openai_standin() -> Iterator[RunningStandIn]:
    """The OpenAI stand-in over HTTP, accepting OPENAI_TEST_KEY; its faults are off at start."""
    server = start_openai_standin(OPENAI_TEST_KEY)
    yield server
    server.stop()


@pytest.fixture
async def stack(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Stack]:
    """The end-to-end stack (tests/service, tests/telemetry): emulator, API on uvicorn, worker."""
    async with open_stack(database, redis_url, key_prefix, e2e_config()) as running:
        yield running
