"""Real servers for every test: the embedded PostgreSQL 18 and Redis (REDIS_URL when set).

`NEANELU_TEST_POSTGRES=16` runs them on PostgreSQL 16 from the `pgserver` wheel instead (`make test-pg16`),
in a data dir of its own.

Each test that needs PostgreSQL gets its own database cloned from a migrated template, so tests that
commit (COPY, RLS roles, workers in other processes) never see each other's rows.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres, start_redis
from neanelu.db.pool import Conn, PoolSizes, create_pool

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("NEANELU_TEST_DATA_DIR", ROOT / ".data"))
TEMPLATE = "neanelu_test_template"


@dataclass(frozen=True, slots=True)
class TestDatabase:
    __test__ = False  # a fixture value, not a test class

    server: EmbeddedPostgres
    name: str

    @property
    def app_url(self) -> str:
        return self.server.url(APP_ROLE, self.name)

    @property
    def owner_url(self) -> str:
        return self.server.url(OWNER_ROLE, self.name)

    @property
    def superuser_url(self) -> str:
        return self.server.url("postgres", self.name)


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


def _create_database(server: EmbeddedPostgres, template: str) -> TestDatabase:
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} OWNER {OWNER_ROLE}")
    return TestDatabase(server, name)


def _drop_database(db: TestDatabase) -> None:
    with psycopg.connect(db.server.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")


@pytest.fixture
def database(pg_server: EmbeddedPostgres, pg_template: str) -> Iterator[TestDatabase]:
    """A fresh, migrated database for this test alone."""
    db = _create_database(pg_server, pg_template)
    yield db
    _drop_database(db)


@pytest.fixture
def empty_database(pg_server: EmbeddedPostgres) -> Iterator[TestDatabase]:
    """A fresh database with no migrations applied (owned by the owner role)."""
    db = _create_database(pg_server, "template1")
    yield db
    _drop_database(db)


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
