"""App-owned metafields of another app (addendum C), through the worker's real shop access.

The emulator's primary app (api client id 1000001) owns `app--1000001--sync` metafields on every
fifth product. Here neanelu runs as the emulator's *other* app, so its own token never sees them:
they arrive only when the primary app is registered as an owner app with its token; without one
they are reported unavailable and what is stored of them stays.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from neanelu.cli.main import app as cli
from neanelu.db.pool import bind_tenant, global_scope, tenant_scope
from neanelu.queue import CostLimiter
from neanelu.runtime import Runtime
from neanelu.shops import owner_apps
from neanelu.shops import repository as shops
from neanelu.sync import repository as runs
from neanelu.sync.service import SyncDeps, SyncSummary, request_full_sync, run_sync
from neanelu.sync.verify import verify_sample
from neanelu.vault import Sealed, TokenVault, VaultKey, key_id_of
from neanelu.worker.resources import RuntimeShopAccess
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from tests.databases import TestDatabase
from tests.service.support import build_runtime, close_runtime, make_settings

OWNER_ID = 1_000_001  # the emulator's primary app
NAMESPACE = f"app--{OWNER_ID}"
OWNED_KEY = f"{NAMESPACE}--sync.fingerprint"
DOMAIN = "owned.myshopify.com"


@dataclass
class Setup:
    emulator: RunningEmulator
    runtime: Runtime
    shop_id: uuid.UUID
    access: RuntimeShopAccess

    async def mint(self, client_id: str | None = None) -> str:
        body = {"client_id": client_id} if client_id else {}
        url = f"{self.emulator.base_url}/_emulator/shops/owned/tokens"
        response = await self.runtime.http.post(url, json=body)
        response.raise_for_status()
        return str(response.json()["access_token"])

    async def register(self, token: str | None) -> None:
        async with tenant_scope(self.runtime.pool, self.shop_id) as conn:
            await owner_apps.put(
                conn,
                self.runtime.vault,
                self.shop_id,
                OWNER_ID,
                name="primary",
                token=SecretStr(token) if token else None,
            )

    async def full_sync(self) -> SyncSummary:
        async with tenant_scope(self.runtime.pool, self.shop_id) as conn:
            run = await request_full_sync(conn, self.shop_id)
        deps = SyncDeps(
            self.runtime.pool,
            self.runtime.http,
            self.access,
            self.runtime.redis,
            owner_apps=self.access,
        )
        return await run_sync(deps, self.shop_id, run.id)

    async def owned(self) -> dict[int, object]:
        async with tenant_scope(self.runtime.pool, self.shop_id) as conn:
            cur = await conn.execute(
                "SELECT shopify_id, metafields -> %s FROM products WHERE metafields ? %s",
                (OWNED_KEY, OWNED_KEY),
            )
            return {int(r[0]): r[1] for r in await cur.fetchall()}

    async def expected_owned(self) -> int:
        url = f"{self.emulator.base_url}/_emulator/shops/owned/counts"
        return int((await self.runtime.http.get(url)).json()["app_owned_metafields"])


@pytest.fixture
async def setup(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Setup]:
    emulator = start_in_thread(EmulatorConfig(shops=[ShopConfig(name="owned", products=60)]))
    settings = make_settings(SHOPIFY_BASE_URL=emulator.base_url, SHOPIFY_API_SECRET_PREVIOUS=None)
    runtime = await build_runtime(
        settings, database, redis_url, key_prefix, transport=httpx.AsyncHTTPTransport()
    )
    try:
        setup = Setup(
            emulator, runtime, uuid.uuid4(), RuntimeShopAccess(runtime, CostLimiter(runtime.redis))
        )
        ours = await setup.mint("other-client-id")
        async with global_scope(runtime.pool) as conn:
            setup.shop_id, _ = await shops.ensure(conn, DOMAIN)
            await bind_tenant(conn, setup.shop_id)
            sealed = runtime.vault.seal(SecretStr(ours), shop_id=setup.shop_id, kind="access")
            await shops.store_tokens(
                conn,
                setup.shop_id,
                access=sealed,
                access_expires_at=None,
                refresh=None,
                refresh_expires_at=None,
            )
        yield setup
    finally:
        await close_runtime(runtime)
        emulator.stop()


async def test_owner_app_metafields_are_read_with_its_token_or_reported_and_kept(
    setup: Setup,
) -> None:
    expected = await setup.expected_owned()
    assert expected >= 10

    # Known but without a token: reported, and nothing is stored as if it were empty.
    await setup.register(None)
    first = await setup.full_sync()
    assert first.unavailable_metafields == {NAMESPACE: "no token registered for this owner app"}
    assert await setup.owned() == {}
    assert first.products == 60

    # With the owner's token: every app-owned metafield arrives, and only the owner's own
    # namespaces came from its file (the shared ones are not doubled).
    await setup.register(await setup.mint())
    second = await setup.full_sync()
    assert second.unavailable_metafields == {}
    read = await setup.owned()
    assert len(read) == expected
    assert all(isinstance(v, dict) and v["value"].startswith("fp-") for v in read.values())

    # Token taken away, and a product holding one of them changes: the next complete sync
    # rewrites that product but keeps the owner's metafields, and says why.
    product = min(read)
    await setup.runtime.http.patch(
        f"{setup.emulator.base_url}/_emulator/shops/owned/products/{product}",
        json={"title": "retitled while the owner app is unreadable"},
    )
    await setup.register(None)
    third = await setup.full_sync()
    assert third.unavailable_metafields == {NAMESPACE: "no token registered for this owner app"}
    assert await setup.owned() == read
    async with tenant_scope(setup.runtime.pool, setup.shop_id) as conn:
        cur = await conn.execute("SELECT title FROM products WHERE shopify_id = %s", (product,))
        assert (await cur.fetchone()) == ("retitled while the owner app is unreadable",)
        latest = (await runs.latest_runs(conn, 1))[0]
    assert latest.counts["unavailable_metafields"] == third.unavailable_metafields

    # A token Shopify refuses is the same: reported with the reason, stored values kept.
    await setup.register("shpat_revoked_or_never_valid")
    fourth = await setup.full_sync()
    assert "refused" in fourth.unavailable_metafields[NAMESPACE]
    assert await setup.owned() == read

    # Parity leaves the owner's namespaces out: this app's token cannot see them.
    client = await setup.access.admin_client(setup.shop_id)
    report = await verify_sample(
        setup.runtime.pool, client, setup.shop_id, 60, owner_namespaces=(NAMESPACE,)
    )
    assert report.matches, report.differences[:3]
    unfiltered = await verify_sample(setup.runtime.pool, client, setup.shop_id, 60)
    assert {d.field for d in unfiltered.differences} == {"metafields"}


def test_owner_app_cli_registers_lists_and_removes_without_echoing_the_token(
    database: TestDatabase, redis_url: str
) -> None:
    key = b"K" * 32
    env = {
        "POSTGRES_URL": database.app_url,
        "REDIS_URL": redis_url,
        "ENCRYPTION_KEY_256": base64.b64encode(key).decode(),
    }
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO shops (domain) VALUES (%s) RETURNING id", (DOMAIN,)
        ).fetchone()
    assert row is not None
    shop_id = row[0]
    runner = CliRunner()
    base = ["shops", "owner-app"]
    secret = "shpat_owner_app_secret_token"
    added = runner.invoke(
        cli,
        [*base, "set", "--shop", "owned", "--app-id", str(OWNER_ID), "--name", "primary"],
        env={**env, "NEANELU_OWNER_APP_TOKEN": secret},
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(cli, [*base, "list", "--shop", "owned"], env=env)
    assert listed.exit_code == 0
    assert "sealed" in listed.output
    assert NAMESPACE in listed.output
    assert secret not in added.output + listed.output
    with psycopg.connect(database.superuser_url) as conn:
        stored = conn.execute(
            "SELECT access_token_ct, access_token_key_id FROM owner_apps WHERE shop_id = %s",
            (shop_id,),
        ).fetchone()
    assert stored is not None
    assert secret.encode() not in bytes(stored[0])
    vault = TokenVault(VaultKey(key_id_of(key), key))
    opened = vault.open(
        Sealed(bytes(stored[0]), stored[1]), shop_id=shop_id, kind=owner_apps.token_kind(OWNER_ID)
    )
    assert opened.get_secret_value() == secret

    unreadable = runner.invoke(
        cli, [*base, "set", "--shop", "owned", "--app-id", "7", "--no-token"], env=env
    )
    assert unreadable.exit_code == 0
    assert "unavailable" in unreadable.output
    piped = runner.invoke(
        cli, [*base, "set", "--shop", "owned", "--app-id", "8"], env=env, input="two words\n"
    )
    assert piped.exit_code == 2
    assert "token" in piped.output
    bad_id = runner.invoke(cli, [*base, "set", "--shop", "owned", "--app-id", "0"], env=env)
    assert bad_id.exit_code == 2
    unknown = runner.invoke(cli, [*base, "list", "--shop", "nowhere"], env=env)
    assert unknown.exit_code == 2
    assert "not installed" in unknown.output

    remove = [*base, "remove", "--shop", "owned", "--app-id", str(OWNER_ID)]
    assert runner.invoke(cli, remove, env=env).exit_code == 0
    assert runner.invoke(cli, remove, env=env).exit_code == 1
    listed = runner.invoke(cli, [*base, "list", "--shop", "owned"], env=env)
    assert str(OWNER_ID) not in listed.output
    assert "none (unavailable)" in listed.output
