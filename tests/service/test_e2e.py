"""End to end against the Shopify emulator: install through the real endpoints, subscriptions,
the first full sync queued, catalog changes arriving as webhooks (also duplicated and reordered)
and ending in PostgreSQL, then the uninstall. Logs of the whole flow hold no token or secret."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import httpx
import pytest

from neanelu.db.pool import global_scope, tenant_scope
from neanelu.queue.settings import BULK, WEBHOOK
from neanelu.shops import repository as shops
from neanelu.shops import tasks as shop_tasks
from neanelu.shops.tokens import access_token
from tests.service.e2e_stack import (
    CONTROL,
    SHOP,
    Stack,
    db_product,
    db_variants,
    eventually,
    install,
    number,
)
from tests.service.support import SECRET


async def test_install_webhooks_and_uninstall_end_to_end(
    stack: Stack, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    rt = stack.runtime
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = await install(stack, browser)

    # Token stored sealed: the column holds no plaintext of the token the emulator issued.
    async with global_scope(rt.pool) as conn:
        found = await shops.get_by_domain(conn, SHOP)
    assert found is not None
    assert found.access_token is None
    async with tenant_scope(rt.pool, found.id) as conn:
        row = await shops.get(conn, found.id)
    assert row is not None
    assert row.access_token is not None
    assert row.status == "installed"
    plain = rt.vault.open(row.access_token, shop_id=row.id, kind="access").get_secret_value()
    assert plain.encode() not in row.access_token.ciphertext

    # Subscriptions created by the worker through GraphQL; the first full sync waits in `bulk`.
    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return len(subs) >= len(shop_tasks.WEBHOOK_TOPICS)

    await eventually(subscribed, "webhook subscriptions")
    # The plan and the cost bucket the shop's first answer reported (the emulator's defaults).
    async with global_scope(rt.pool) as conn:
        cur = await conn.execute(
            "SELECT plan_name, api_bucket_size, api_restore_rate FROM shops WHERE id = %s",
            (found.id,),
        )
        assert await cur.fetchone() == ("Standard", 2000, 100)
    bulk = await rt.queues.queue(BULK).counts()
    assert bulk.enqueued >= 1

    # A new product arrives through products/create.
    created = (await stack.control.post(f"{CONTROL}/products", json={"title": "E2E Shirt"})).json()
    product = created["product"]
    pid = number(product["id"])

    async def arrived() -> bool:
        found = await db_product(rt, row.id, pid)
        return found is not None and found[0] == "E2E Shirt"

    await eventually(arrived, "products/create applied")

    # Updates in each delivery mode: duplicated, then reordered (newest first). The final row is
    # the emulator's final state whatever arrived when.
    for mode, titles in (("duplicate", ["dup 1", "dup 2"]), ("reorder", ["re 1", "re 2", "re 3"])):
        assert (await stack.control.put(f"{CONTROL}/webhooks/mode", json={"mode": mode})).is_success
        for title in titles:
            r = await stack.control.patch(
                f"{CONTROL}/products/{product['id']}", json={"title": title, "vendor": mode}
            )
            assert r.status_code == 200

        async def settled(last: str = titles[-1]) -> bool:
            found = await db_product(rt, row.id, pid)
            return found is not None and found[0] == last

        await eventually(settled, f"{mode} deliveries settled")
        await asyncio.sleep(0.5)  # let every late duplicate land, then check nothing regressed
        assert (await db_product(rt, row.id, pid) or ("",))[0] == titles[-1]
    await stack.control.put(f"{CONTROL}/webhooks/mode", json={"mode": "normal"})

    truth = (await stack.control.get(f"{CONTROL}/products/{product['id']}")).json()
    stored = await db_product(rt, row.id, pid)
    assert stored is not None
    assert stored[:4] == (truth["title"], truth["status"], truth["vendor"], truth["tags"])
    variants = await db_variants(rt, row.id, pid)
    assert [(v[0], v[1], v[2], v[3], v[4]) for v in variants] == [
        (
            number(v["id"]),
            v["sku"],
            Decimal(v["price"]),
            number(v["inventoryItem"]["id"]),
            v["selectedOptions"],
        )
        for v in sorted(truth["variants"], key=lambda v: number(v["id"]))
    ]

    # Inventory: the level lands newer-wins.
    item = truth["variants"][0]["inventoryItem"]["id"]
    level = (
        await stack.control.post(
            f"{CONTROL}/inventory", json={"inventory_item_id": item, "available": 42}
        )
    ).json()

    async def stocked() -> bool:
        async with tenant_scope(rt.pool, row.id) as conn:
            cur = await conn.execute(
                "SELECT available FROM inventory_levels WHERE inventory_item_id = %s "
                "AND location_id = %s",
                (number(item), level["location_id"]),
            )
            found = await cur.fetchone()
        return found is not None and found[0] == 42

    await eventually(stocked, "inventory_levels/update applied")

    # Delete: the product is marked deleted (its row and variants stay, retired).
    await stack.control.delete(f"{CONTROL}/products/{product['id']}")

    async def deleted() -> bool:
        found = await db_product(rt, row.id, pid)
        return found is not None and found[5] is True

    await eventually(deleted, "products/delete applied")
    assert await db_variants(rt, row.id, pid) == []

    # A forced refresh goes through the emulator's token endpoint and stores the new pair.
    refreshed = await access_token(rt, row.id, force_refresh=True)
    assert refreshed.get_secret_value() != plain

    # Uninstall: tokens dropped, purge scheduled, the shop's queues paused.
    await stack.control.post(f"{CONTROL}/uninstall", json={})

    async def uninstalled() -> bool:
        async with global_scope(rt.pool) as conn:
            current = await shops.get(conn, row.id)
        return current is not None and current.status == "uninstalled"

    await eventually(uninstalled, "app/uninstalled applied")
    async with tenant_scope(rt.pool, row.id) as conn:
        after = await shops.get(conn, row.id)
    assert after is not None
    assert after.access_token is None
    assert after.purge_after is not None
    assert (await rt.queues.queue(WEBHOOK).group_state(str(row.id))).get("paused")
    assert shop_id == str(row.id)

    # Nothing secret reached the logs over the whole flow.
    # Both the records and whatever the log handlers wrote out (JSON lines on stderr).
    out, err = capfd.readouterr()
    text = caplog.text + " ".join(str(r.args) for r in caplog.records) + out + err
    for secret in (plain, refreshed.get_secret_value(), SECRET, "shpat_", "shprt_"):
        assert secret not in text, f"{secret[:6]}... leaked into the logs"
    assert any("installed" in r.getMessage() for r in caplog.records)
