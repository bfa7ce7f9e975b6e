"""`neanelu search-embed`, `search`, `search-language` and `search-partition` as commands."""

from __future__ import annotations

import json
import uuid

import psycopg
from typer.testing import CliRunner

from neanelu.cli.main import app
from tests.databases import TestDatabase
from tests.integration.search.catalog import CATALOG


def _shop(conn: psycopg.Connection, domain: str, base: int) -> uuid.UUID:
    row = conn.execute(
        "INSERT INTO shops (domain, status, installed_at) VALUES (%s, 'installed', now()) "
        "RETURNING id",
        (domain,),
    ).fetchone()
    assert row is not None
    conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(row[0]),))
    for i, (title, vendor, ptype, tags, desc, _price) in enumerate(CATALOG):
        conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, vendor, product_type, status, "
            "tags, description) VALUES (%s, %s, %s, %s, %s, 'ACTIVE', %s, %s)",
            (row[0], base + i, title, vendor, ptype, tags, desc),
        )
    return uuid.UUID(str(row[0]))


def test_search_commands_end_to_end(database: TestDatabase, redis_url: str) -> None:
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        _shop(conn, "cli-a.myshopify.com", 1000)
        big = _shop(conn, "cli-b.myshopify.com", 2000)
    env = {
        "POSTGRES_URL": database.app_url,
        "POSTGRES_OWNER_URL": database.owner_url,
        "REDIS_URL": redis_url,
    }
    runner = CliRunner()
    for shop in ("cli-a", "cli-b"):
        out = runner.invoke(app, ["search-embed", "--shop", shop], env=env)
        assert out.exit_code == 0, out.output
        assert "embedded 6, skipped 0 unchanged" in out.output
    again = runner.invoke(app, ["search-embed", "--shop", "cli-a"], env=env)
    assert "embedded 0, skipped 6 unchanged" in again.output

    table = runner.invoke(app, ["search", "--shop", "cli-a", "winter coat"], env=env)
    assert table.exit_code == 0, table.output
    assert "Wool winter coat" in table.output
    assert "text+vector" in table.output

    moved = runner.invoke(app, ["search-partition", "--shop", "cli-b"], env=env)
    assert moved.exit_code == 0, moved.output
    assert f"embeddings_{big.hex}" in moved.output
    # Rich wraps at the terminal's width.
    assert "100.00% of 6 sampled vectors found by themselves" in " ".join(moved.output.split())
    over = runner.invoke(
        app, ["search-partition", "--shop", "cli-b", "--min-reach", "1.5"], env=env
    )
    assert over.exit_code == 2
    assert "--min-reach" in over.output
    for shop, base in (("cli-a", 1000), ("cli-b", 2000)):
        answer = runner.invoke(
            app, ["search", "--shop", shop, "--json", "coat for cold days"], env=env
        )
        assert answer.exit_code == 0, answer.output
        hits = json.loads(answer.output)["hits"]
        assert hits[0]["product"]["id"] == str(base + 5)
        assert all(base <= int(h["product"]["id"]) < base + 100 for h in hits)

    lang = runner.invoke(app, ["search-language", "--shop", "cli-a", "klingon"], env=env)
    assert lang.exit_code == 2
    assert "no text search configuration named 'klingon'" in lang.output
    bad = runner.invoke(app, ["search", "--shop", "cli-a", "--price-min", "-3", "x"], env=env)
    assert bad.exit_code == 2
    assert "--price-min must be a non-negative number" in bad.output
    unknown = runner.invoke(app, ["search", "--shop", "nobody", "x"], env=env)
    assert unknown.exit_code == 2
    assert "not installed here" in unknown.output


def test_search_warm_loads_a_shop_into_redis_and_its_searches_come_from_there(
    database: TestDatabase, query_engine_redis: str, redis_url: str
) -> None:
    domain = f"cli-w{uuid.uuid4().hex[:6]}"
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        _shop(conn, f"{domain}.myshopify.com", 3000)
    env = {
        "POSTGRES_URL": database.app_url,
        "POSTGRES_OWNER_URL": database.owner_url,
        "REDIS_URL": query_engine_redis,
    }
    runner = CliRunner()
    nothing = runner.invoke(app, ["search-warm", "--shop", domain], env=env)
    assert nothing.exit_code == 0, nothing.output
    assert "no embedded products yet" in nothing.output
    assert runner.invoke(app, ["search-embed", "--shop", domain], env=env).exit_code == 0
    warmed = runner.invoke(app, ["search-warm", "--shop", domain], env=env)
    assert warmed.exit_code == 0, warmed.output
    assert "6 vector(s) loaded into the Redis hot cache" in warmed.output
    answer = runner.invoke(
        app, ["search", "--shop", domain, "--json", "coat for cold days"], env=env
    )
    assert answer.exit_code == 0, answer.output
    body = json.loads(answer.output)
    assert body["vector_store"] == "redis"
    assert body["hits"][0]["product"]["id"] == "3005"
    # A Redis without the query engine: said so, and a failure exit.
    plain = runner.invoke(
        app, ["search-warm", "--shop", domain], env={**env, "REDIS_URL": redis_url}
    )
    assert plain.exit_code == 1
    assert "did not reach Redis" in plain.output
