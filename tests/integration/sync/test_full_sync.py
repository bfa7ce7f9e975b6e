"""Full syncs against the emulator over HTTP, into the real PostgreSQL."""

from __future__ import annotations

from tests.integration.sync.conftest import SyncHarness


async def test_full_sync_stores_every_object_the_shop_has(harness: SyncHarness) -> None:
    summary = await harness.full_sync()
    expected = await harness.expected_counts()
    stored = await harness.stored()
    assert summary.status == "completed"
    assert stored["products"] == expected["products"] == 120
    assert stored["variants"] == expected["variants"]
    assert stored["inventory_levels"] == expected["inventory_levels"]
    # App-owned metafields are visible to this (owner) app's token too.
    assert stored["product_metafields"] == expected["product_metafields"]
    assert stored["variant_metafields"] == expected["variant_metafields"]
    assert summary.bad_lines == 0 and summary.orphans == 0
