"""The test databases: where the embedded servers keep their data, and one database per test cloned
from a migrated template (plain helpers; the fixtures that use them are in tests/conftest.py)."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
_BASE_DIR = Path(os.environ.get("NEANELU_TEST_DATA_DIR", ROOT / ".data"))
# Under pytest-xdist each worker process runs servers of its own (its own PostgreSQL, template and
# Redis): workers sharing one template would drop it under each other.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
DATA_DIR = _BASE_DIR / f"xdist-{_WORKER}" if _WORKER else _BASE_DIR
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


def create_database(server: EmbeddedPostgres, template: str) -> TestDatabase:
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(server.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} OWNER {OWNER_ROLE}")
    return TestDatabase(server, name)


def drop_database(db: TestDatabase) -> None:
    with psycopg.connect(db.server.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
