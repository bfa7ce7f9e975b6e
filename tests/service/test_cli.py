"""`neanelu serve` and `neanelu keys rotate` as commands."""

from __future__ import annotations

import base64

import psycopg
from pydantic import SecretStr
from typer.testing import CliRunner

from neanelu.cli.main import app
from neanelu.vault import Sealed, TokenVault, VaultKey, key_id_of
from tests.databases import TestDatabase

OLD = b"O" * 32
NEW = b"N" * 32


def test_serve_and_keys_are_registered() -> None:
    runner = CliRunner()
    serve = runner.invoke(app, ["serve", "--help"])
    assert serve.exit_code == 0
    assert "--workers" in serve.output
    keys = runner.invoke(app, ["keys", "--help"])
    assert keys.exit_code == 0
    assert "rotate" in keys.output


def test_keys_rotate_reseals_tokens(database: TestDatabase, redis_url: str) -> None:
    old_vault = TokenVault(VaultKey(key_id_of(OLD), OLD))
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO shops (domain) VALUES ('cli.myshopify.com') RETURNING id"
        ).fetchone()
        assert row is not None
        shop_id = row[0]
        sealed = old_vault.seal(SecretStr("shpat_cli_token"), shop_id=shop_id, kind="access")
        conn.execute(
            "UPDATE shops SET access_token_ct = %s, access_token_key_id = %s WHERE id = %s",
            (sealed.ciphertext, sealed.key_id, shop_id),
        )
    env = {
        "POSTGRES_URL": database.app_url,
        "REDIS_URL": redis_url,
        "ENCRYPTION_KEY_256": base64.b64encode(NEW).decode(),
        "ENCRYPTION_KEYS_PREVIOUS": base64.b64encode(OLD).decode(),
    }
    result = CliRunner().invoke(app, ["keys", "rotate"], env=env)
    assert result.exit_code == 0, result.output
    assert "re-sealed 1 shop(s)" in result.output
    assert "shpat_cli_token" not in result.output
    with psycopg.connect(database.owner_url) as conn:
        stored = conn.execute(
            "SELECT access_token_ct, access_token_key_id FROM shops WHERE id = %s", (shop_id,)
        ).fetchone()
    assert stored is not None
    assert stored[1] == key_id_of(NEW)
    new_vault = TokenVault(VaultKey(key_id_of(NEW), NEW))
    opened = new_vault.open(Sealed(bytes(stored[0]), stored[1]), shop_id=shop_id, kind="access")
    assert opened.get_secret_value() == "shpat_cli_token"


def test_db_seed_loads_the_seed_shop_as_the_app_role(
    database: TestDatabase, redis_url: str
) -> None:
    """The seed shop is created through the install's own path (the application role inserts no
    shops row itself) and its catalog goes in under its tenant."""
    env = {
        "POSTGRES_URL": database.app_url,
        "POSTGRES_OWNER_URL": database.owner_url,
        "REDIS_URL": redis_url,
    }
    for _ in range(2):  # the second run finds the shop and replaces its catalog
        result = CliRunner().invoke(app, ["db", "seed", "--products", "25"], env=env)
        assert result.exit_code == 0, result.output
        assert "seed shop now holds 25 products" in result.output
    with psycopg.connect(database.superuser_url) as conn:
        shops = conn.execute(
            "SELECT domain, status, installed_at IS NOT NULL FROM shops"
        ).fetchall()
        products = conn.execute("SELECT count(*) FROM products").fetchone()
    assert shops == [("neanelu-seed.myshopify.com", "installed", True)]
    assert products == (25,)
