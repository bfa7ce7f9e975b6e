"""Search follows the catalog through the real chain: emulator webhook -> inbox -> worker applies
the product -> outbox -> `search.embed` on `ai-batch` -> `/api/search` finds it by its new title."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from neanelu.db.pool import tenant_scope
from neanelu.shops import service
from neanelu.shops import tasks as shop_tasks
from tests.service.e2e_stack import CONTROL, Stack, eventually, install, number


async def test_retitled_product_is_found_by_its_new_title_and_deleted_one_disappears(
    stack: Stack,
) -> None:
    rt = stack.runtime
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as browser:
        shop_id = await install(stack, browser)
    async with tenant_scope(rt.pool, uuid.UUID(shop_id)) as conn:
        key = await service.issue_api_key(conn, uuid.UUID(shop_id))
    auth = {"Authorization": f"Bearer {key}"}

    async def subscribed() -> bool:
        subs = (await stack.control.get(f"{CONTROL}/webhooks/subscriptions")).json()
        return len(subs) >= len(shop_tasks.WEBHOOK_TOPICS)

    await eventually(subscribed, "webhook subscriptions")
    created = (
        await stack.control.post(f"{CONTROL}/products", json={"title": "Plain grey hoodie"})
    ).json()["product"]
    pid = str(number(created["id"]))

    async with httpx.AsyncClient(base_url=stack.app_url, timeout=30) as api:

        async def top_hit(query: str) -> dict[str, Any] | None:
            hits = (await api.get("/api/search", params={"q": query}, headers=auth)).json()["hits"]
            return hits[0] if hits else None

        async def found_by(query: str) -> bool:
            hit = await top_hit(query)
            return hit is not None and hit["product"]["id"] == pid and "text" in hit["matched"]

        # The first embedding job of the worker loads the model: a longer first wait.
        await eventually(lambda: found_by("hoodie"), "the created product searchable", 120)
        r = await stack.control.patch(
            f"{CONTROL}/products/{created['id']}", json={"title": "Turquoise flamingo umbrella"}
        )
        assert r.status_code == 200
        await eventually(lambda: found_by("flamingo umbrella"), "the new title searchable", 30)
        stale = await top_hit("hoodie")
        assert stale is None or stale["product"]["id"] != pid or "text" not in stale["matched"]

        await stack.control.delete(f"{CONTROL}/products/{created['id']}")

        async def gone() -> bool:
            async with tenant_scope(rt.pool, uuid.UUID(shop_id)) as conn:
                cur = await conn.execute(
                    "SELECT count(*) FROM embeddings WHERE product_shopify_id = %s", (int(pid),)
                )
                row = await cur.fetchone()
            return row == (0,)

        await eventually(gone, "the deleted product's vectors removed", 30)
        hit = await top_hit("flamingo umbrella")
        assert hit is None or hit["product"]["id"] != pid
