"""Every console page over the real app, database and Redis: what it shows, what it hides."""

from __future__ import annotations

import json

import psycopg

from neanelu.db.pool import global_scope
from neanelu.queue.client import JobSpec
from neanelu.runtime import Runtime
from neanelu.web.console import reads
from tests.console.conftest import SignedIn
from tests.databases import TestDatabase
from tests.factories import create_shop

SECRET = "shpat_0123456789abcdef0123456789abcdef"


async def make_dead_job(rt: Runtime, group: str) -> str:
    q = rt.queues.queue("sync")
    payload = json.dumps({"shop_id": group, "access_token": SECRET, "note": f"token {SECRET}"})
    await q.enqueue(
        JobSpec(
            task="test.fails",
            group=group,
            payload=payload.encode(),
            job_id="dead-1",
            max_attempts=1,
        )
    )
    reserved = await q.reserve(1)
    (job,) = reserved.jobs
    await q.fail(job, f"boom: upstream said access_token={SECRET}")
    info = await q.job_info("dead-1")
    assert info is not None
    assert info.state == "dead"
    return job.id


def seed_catalog(database: TestDatabase, shop_id: object, n: int) -> None:
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(shop_id),))
        conn.execute(
            "INSERT INTO products (shop_id, shopify_id, title, vendor, status, metafields)"
            " SELECT %s, i, 'Product ' || i, CASE WHEN i %% 2 = 0 THEN 'Even' ELSE 'Odd' END,"
            ' \'ACTIVE\', \'{"custom.colour": {"type": "single_line_text_field", "value": "red"}}\''
            " FROM generate_series(1, %s) i",
            (shop_id, n),
        )
        conn.execute(
            "INSERT INTO variants (shop_id, shopify_id, product_shopify_id, sku, title, price,"
            " inventory_item_id, position) VALUES (%s, 9001, 1, 'SKU-1', 'Default', 12.5, 7001, 1)",
            (shop_id,),
        )
        conn.execute(
            "INSERT INTO inventory_levels (shop_id, shopify_id, inventory_item_id, location_id,"
            " available) VALUES (%s, 5001, 7001, 42, 17)",
            (shop_id,),
        )
        conn.execute(
            "INSERT INTO sync_runs (shop_id, kind, status, phase, counts, finished_at)"
            " VALUES (%s, 'full', 'completed', 'done', %s, now())",
            (shop_id, json.dumps({"products": n, "variants": 1, "inventory_levels": 1})),
        )


async def test_shops_and_shop_pages_show_recorded_figures(
    runtime: Runtime, signed_in: SignedIn, database: TestDatabase
) -> None:
    shop_id = await create_shop(runtime.pool, "figures.myshopify.com")
    seed_catalog(database, shop_id, 120)
    shops = await signed_in.client.get("/admin/shops")
    assert "figures.myshopify.com" in shops.text
    assert ">120<" in shops.text
    shop = await signed_in.client.get(f"/admin/shops/{shop_id}")
    assert shop.status_code == 200
    assert "completed" in shop.text
    assert "Start full sync" in shop.text
    live = await signed_in.client.get(f"/admin/shops/{shop_id}/live")
    assert 'id="live-fragment"' in live.text
    assert 'data-active="0"' in live.text
    missing = await signed_in.client.get("/admin/shops/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404


async def test_catalog_pages_by_keyset_with_filters_and_a_product_detail(
    runtime: Runtime, signed_in: SignedIn, database: TestDatabase
) -> None:
    shop_id = await create_shop(runtime.pool)
    seed_catalog(database, shop_id, 120)
    c = signed_in.client
    first = await c.get(f"/admin/shops/{shop_id}/products")
    assert "Product 50<" in first.text
    assert "Product 51<" not in first.text
    assert f"/admin/shops/{shop_id}/products?after=50" in first.text
    second = await c.get(f"/admin/shops/{shop_id}/products?after=50")
    assert "Product 51<" in second.text
    assert "Product 100<" in second.text
    last = await c.get(f"/admin/shops/{shop_id}/products?after=100")
    assert "Product 120<" in last.text
    assert "Next page" not in last.text
    even = await c.get(f"/admin/shops/{shop_id}/products?vendor=Even")
    assert "Product 2<" in even.text
    assert "Product 3<" not in even.text
    titled = await c.get(f"/admin/shops/{shop_id}/products?title=roduct%2011")
    assert "Product 11<" in titled.text
    assert "Product 110<" in titled.text
    assert "Product 12<" not in titled.text
    # LIKE's wildcards in the filter are literal.
    assert "No products match" in (await c.get(f"/admin/shops/{shop_id}/products?title=%25")).text
    detail = await c.get(f"/admin/shops/{shop_id}/products/1")
    assert "SKU-1" in detail.text
    assert "location 42: 17" in detail.text
    assert "custom.colour" in detail.text
    assert (await c.get(f"/admin/shops/{shop_id}/products/99999")).status_code == 404
    bad = await c.get(f"/admin/shops/{shop_id}/products?after=-1")
    assert bad.status_code == 422


async def test_a_dead_job_is_shown_redacted_and_retried_from_the_console(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    shop_id = await create_shop(runtime.pool)
    await make_dead_job(runtime, str(shop_id))
    c = signed_in.client
    queues = await c.get("/admin/queues")
    assert queues.status_code == 200
    assert "dead-1" in queues.text
    job = await c.get("/admin/queues/sync/jobs/dead-1")
    assert "[REDACTED]" in job.text
    assert SECRET not in job.text
    assert "boom" in job.text
    dead = await c.get("/admin/queues/sync/dead")
    assert 'value="dead-1"' in dead.text
    retried = await c.post(
        "/admin/queues/sync/dead/retry", data={"csrf_token": signed_in.csrf, "job_id": "dead-1"}
    )
    assert retried.status_code == 303
    assert "notice=retried&n=1" in retried.headers["location"]
    info = await runtime.queues.queue("sync").job_info("dead-1")
    assert info is not None
    assert info.state == "waiting"
    assert "1 job(s) retried." in (await c.get(retried.headers["location"])).text


async def test_purge_all_and_refusals(runtime: Runtime, signed_in: SignedIn) -> None:
    shop_id = await create_shop(runtime.pool)
    await make_dead_job(runtime, str(shop_id))
    c = signed_in.client
    nothing = await c.post("/admin/queues/sync/dead/purge", data={"csrf_token": signed_in.csrf})
    assert nothing.status_code == 400
    assert "tick at least one job" in nothing.text
    unknown = await c.post(
        "/admin/queues/nope/dead/purge", data={"csrf_token": signed_in.csrf, "all": "1"}
    )
    assert unknown.status_code == 404
    purged = await c.post(
        "/admin/queues/sync/dead/purge", data={"csrf_token": signed_in.csrf, "all": "1"}
    )
    assert purged.status_code == 303
    assert await runtime.queues.queue("sync").job_info("dead-1") is None
    assert (await runtime.queues.queue("sync").counts()).dead_letter == 0


async def test_start_full_sync_queues_the_job_with_its_audit_row(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    shop_id = await create_shop(runtime.pool)
    response = await signed_in.client.post(
        f"/admin/shops/{shop_id}/sync", data={"csrf_token": signed_in.csrf}
    )
    assert response.status_code == 303
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT task, group_id FROM outbox")
        assert await cur.fetchall() == [("sync.full", str(shop_id))]
        cur = await conn.execute(
            "SELECT action, detail->>'job_id' FROM console_audit WHERE action = 'shop.full_sync'"
        )
        ((_, job_id),) = await cur.fetchall()
        assert job_id.startswith(f"sync-{shop_id}-")


async def test_static_files_are_served_with_an_etag(signed_in: SignedIn) -> None:
    css = await signed_in.client.get("/admin/static/console.css")
    assert css.status_code == 200
    assert "prefers-color-scheme: dark" in css.text
    again = await signed_in.client.get(
        "/admin/static/console.css", headers={"If-None-Match": css.headers["etag"]}
    )
    assert again.status_code == 304
    assert (await signed_in.client.get("/admin/static/../app.py")).status_code == 404


async def test_a_parity_check_is_queued_with_its_row_and_audit(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    shop_id = await create_shop(runtime.pool)
    c = signed_in.client
    for bad in ("0", "abc", "10001"):
        refused = await c.post(
            f"/admin/shops/{shop_id}/parity", data={"csrf_token": signed_in.csrf, "sample": bad}
        )
        assert refused.status_code == 400
        assert "sample must be" in refused.text
    ok = await c.post(
        f"/admin/shops/{shop_id}/parity", data={"csrf_token": signed_in.csrf, "sample": "25"}
    )
    assert ok.status_code == 303
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT task, group_id, payload->>'check_id' FROM outbox")
        ((task, group, check_id),) = await cur.fetchall()
        assert (task, group) == ("sync.parity", str(shop_id))
        cur = await conn.execute(
            "SELECT detail->>'check_id' FROM console_audit WHERE action = 'shop.parity_check'"
        )
        assert await cur.fetchall() == [(check_id,)]
    page = await c.get(f"/admin/shops/{shop_id}")
    assert "parity-queued" in page.text
    assert "0 / 25" in page.text


async def test_a_sparse_filter_searches_a_bounded_window_per_page(
    runtime: Runtime, signed_in: SignedIn, database: TestDatabase
) -> None:
    shop_id = await create_shop(runtime.pool)
    seed_catalog(database, shop_id, 120)
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT token_hash FROM console_sessions")
        row = await cur.fetchone()
    assert row is not None
    title = reads.ProductFilter(title="Product 11")
    async with reads.console_scope(runtime.pool, bytes(row[0])) as conn:
        first = await reads.products(conn, shop_id, None, title, window=30)
        empty = await reads.products(conn, shop_id, 30, title, window=30)
        rest = await reads.products(conn, shop_id, 90, title, window=30)
        plain = await reads.products(conn, shop_id, 100, reads.ProductFilter(), window=30)
    assert [r["shopify_id"] for r in first.rows] == [11]
    assert (first.next_after, first.searched_on) == (30, True)
    assert (empty.rows, empty.next_after, empty.searched_on) == ([], 60, True)
    assert [r["shopify_id"] for r in rest.rows] == list(range(110, 120))
    assert (rest.next_after, rest.searched_on) == (120, True)
    # Without a filter the window never runs dry before the page is full; the end is the end.
    assert [r["shopify_id"] for r in plain.rows] == list(range(101, 121))
    assert plain.next_after is None


async def test_the_queues_page_lists_only_shops_with_work_or_paused(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    busy = await create_shop(runtime.pool, "busy.myshopify.com")
    paused = await create_shop(runtime.pool, "paused.myshopify.com")
    await create_shop(runtime.pool, "idle.myshopify.com")
    await runtime.queues.queue("webhook").enqueue(
        JobSpec(task="test.waits", group=str(busy), payload=b"{}", job_id="waiting-1")
    )
    await runtime.queues.queue("bulk").pause_group(str(paused))
    page = await signed_in.client.get("/admin/queues")
    per_shop = page.text.split('id="per-shop"')[1].split("</table>")[0]
    assert "busy.myshopify.com" in per_shop
    assert "paused.myshopify.com" in per_shop
    assert "idle.myshopify.com" not in per_shop
    assert "1 other shops are idle" in page.text


async def test_errors_under_admin_are_pages_and_the_api_keeps_json(signed_in: SignedIn) -> None:
    c = signed_in.client
    missing = await c.get("/admin/shops/01a23332-f726-79d1-95ea-405508a06465")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "no shop 01a23332-f726-79d1-95ea-405508a06465" in missing.text
    assert "<h1>404 Not Found</h1>" in missing.text
    bad = await c.get("/admin/shops/not-a-uuid/products?after=-1")
    assert bad.status_code == 422
    assert bad.headers["content-type"].startswith("text/html")
    assert "shop_id:" in bad.text
    assert "after:" in bad.text
    # Outside /admin, FastAPI's JSON answers as before.
    api = await c.get("/api/products?limit=0")
    assert api.headers["content-type"].startswith("application/json")
    assert "detail" in api.json()
