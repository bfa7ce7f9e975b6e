"""Migrations build the declared schema, and undo it cleanly."""

from __future__ import annotations

import re
import subprocess

import psycopg

from neanelu.db import migrate
from neanelu.db.embedded import APP_ROLE, postgres_bin
from neanelu.db.sql_files import load_sql
from tests.databases import TestDatabase


def _dump_schema(url: str) -> str:
    out = subprocess.run(
        [
            str(postgres_bin("pg_dump")),
            "--schema-only",
            "--no-owner",
            "--exclude-table=alembic_version",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # Drop comments, blank lines and the per-dump restrict key so only the schema itself compares.
    lines = [
        line
        for line in out.splitlines()
        if line.strip() and not line.startswith("--") and not re.match(r"\\(un)?restrict", line)
    ]
    return "\n".join(lines)


def _table_count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        ).fetchone()
        assert row is not None
        return int(row[0])


def test_upgrade_downgrade_upgrade_on_a_fresh_database(empty_database: TestDatabase) -> None:
    url = empty_database.owner_url
    assert migrate.current_revision(url) is None
    migrate.upgrade(url, APP_ROLE)
    assert migrate.current_revision(url) == migrate.head_revision()
    first = _dump_schema(url)
    assert _table_count(url) == 23
    migrate.downgrade(url, APP_ROLE)
    assert migrate.current_revision(url) is None
    assert _table_count(url) == 0
    migrate.upgrade(url, APP_ROLE)
    assert _dump_schema(url) == first


def test_migrated_schema_matches_the_declared_one(
    database: TestDatabase, empty_database: TestDatabase
) -> None:
    declared = load_sql("schema.sql").replace("{app_role}", APP_ROLE)
    with psycopg.connect(empty_database.owner_url, autocommit=True) as conn:
        conn.execute(declared)
    migrated, built = _dump_schema(database.owner_url), _dump_schema(empty_database.owner_url)
    assert "CREATE POLICY tenant_isolation ON public.products" in migrated
    assert migrated == built


def test_uuidv7_gives_time_ordered_version_7_ids(database: TestDatabase) -> None:
    """PostgreSQL 18 has uuidv7(); older servers get migration 0001's fallback (`make test-pg16`)."""
    with psycopg.connect(database.owner_url) as conn:
        version = conn.info.server_version
        schema = conn.execute(
            "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE p.proname = 'uuidv7' AND p.pronargs = 0"
        ).fetchall()
        ids = []
        for _ in range(3):
            ids += [r for (r,) in conn.execute("SELECT uuidv7() FROM generate_series(1, 50)")]
            conn.execute("SELECT pg_sleep(0.002)")  # the next batch falls in a later millisecond
    assert [s for (s,) in schema] == (["pg_catalog"] if version >= 180000 else ["public"])
    assert {u.version for u in ids} == {7}
    assert {u.variant for u in ids} == {"specified in RFC 4122"}
    millis = [u.int >> 80 for u in ids]
    assert millis == sorted(millis)
    assert millis[-1] > millis[0]
    assert len(set(ids)) == len(ids)
