"""`neanelu shops list`: each shop's status and token state, as the token sweep leaves them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from neanelu.cli import common
from neanelu.cli.main import app
from neanelu.vault import TokenVault
from tests.databases import TestDatabase
from tests.service.support import make_settings


def test_list_shows_each_shops_token_state(
    database: TestDatabase, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI's console is made at import and takes its width from COLUMNS then, whichever test
    # imported it first: this test sets the width it reads the table at (restored afterwards).
    monkeypatch.setattr(common.console, "_width", 220)
    vault = TokenVault.from_settings(make_settings())
    now = datetime.now(UTC)
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        for domain, status, expires in (
            ("fresh.myshopify.com", "installed", now + timedelta(minutes=50)),
            ("refused.myshopify.com", "needs_reauth", now - timedelta(minutes=3)),
        ):
            row = conn.execute(
                "INSERT INTO shops (domain, status) VALUES (%s, %s) RETURNING id",
                (domain, status),
            ).fetchone()
            assert row is not None
            access = vault.seal(SecretStr("shpat_listed"), shop_id=row[0], kind="access")
            refresh = vault.seal(SecretStr("shprt_listed"), shop_id=row[0], kind="refresh")
            conn.execute(
                "UPDATE shops SET access_token_ct = %s, access_token_key_id = %s, "
                "access_token_expires_at = %s, refresh_token_ct = %s, refresh_token_key_id = %s "
                "WHERE id = %s",
                (
                    access.ciphertext,
                    access.key_id,
                    expires,
                    refresh.ciphertext,
                    refresh.key_id,
                    row[0],
                ),
            )
    env = {"POSTGRES_URL": database.app_url, "REDIS_URL": redis_url, "COLUMNS": "220"}
    result = CliRunner().invoke(app, ["shops", "list"], env=env)
    assert result.exit_code == 0, result.output
    lines = {
        line.split()[1]: line for line in result.output.splitlines() if ".myshopify.com" in line
    }
    assert "installed" in lines["fresh.myshopify.com"]
    assert "valid, refreshed ahead" in lines["fresh.myshopify.com"]
    assert re.search(r"\(in (49|50) min\)", lines["fresh.myshopify.com"])
    assert "needs_reauth" in lines["refused.myshopify.com"]
    assert "refresh refused" in lines["refused.myshopify.com"]
    assert "shpat_" not in result.output
    assert "shprt_" not in result.output
