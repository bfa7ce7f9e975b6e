"""Parity check: a hash-chosen sample compared field by field with the emulator."""

from __future__ import annotations

from neanelu.db.pool import tenant_scope
from neanelu.sync.verify import sample_ids, verify_sample
from tests.integration.sync.helpers import SyncHarness


async def test_parity_matches_after_sync_and_reports_each_difference(harness: SyncHarness) -> None:
    await harness.full_sync()
    client = await harness.deps.shops.admin_client(harness.shop_id)
    report = await verify_sample(harness.pool, client, harness.shop_id, 40)
    assert report.sampled == 40
    assert report.compared == 40
    assert report.differences == []
    assert report.matches

    # The sample is a function of the ids, not of chance.
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        first, second = await sample_ids(conn, 40), await sample_ids(conn, 40)
    assert first == second

    target = first[0]
    await harness.control(
        "PATCH", f"/products/gid://shopify/Product/{target}", json={"title": "Changed upstream"}
    )
    report = await verify_sample(harness.pool, client, harness.shop_id, 40)
    fields = {(d.shopify_id, d.field) for d in report.differences}
    assert (target, "title") in fields
    assert not report.matches
