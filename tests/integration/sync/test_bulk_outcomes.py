"""How a sync meets each way a bulk operation can end badly, as the emulator produces them on
request: EXPIRED and TIMEOUT are started again in the run (a bounded number of times), FAILED
keeps its partial data, and an expired result URL is replaced by asking for the operation again."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from neanelu.db.pool import tenant_scope
from neanelu.shopify.errors import BulkOperationError
from neanelu.sync import repository as runs
from neanelu.sync.operations import MAX_RESTARTS
from neanelu.sync.service import PHASES, request_full_sync, run_sync
from neanelu.telemetry import current_metrics
from tests.integration.sync.helpers import SyncHarness


def counted(name: str, **labels: str) -> float:
    return current_metrics().registry.get_sample_value(name, labels) or 0.0


async def operations(harness: SyncHarness, after: set[str] | None = None) -> list[dict[str, Any]]:
    """The shop's bulk operations in the emulator (which lives for the module), less `after`."""
    listed: list[dict[str, Any]] = (await harness.control("GET", "/bulk")).json()
    return [op for op in listed if op["id"] not in (after or set())]


async def existing(harness: SyncHarness) -> set[str]:
    return {op["id"] for op in await operations(harness)}


async def matches_shop(harness: SyncHarness) -> None:
    expected = await harness.expected_counts()
    stored = await harness.stored()
    for key in (
        "products",
        "variants",
        "inventory_levels",
        "product_metafields",
        "variant_metafields",
    ):
        assert stored[key] == expected[key], key


async def test_expired_operation_is_started_again_in_the_same_attempt(
    harness: SyncHarness,
) -> None:
    before = await existing(harness)
    await harness.control("POST", "/faults", json={"kind": "bulk_expired", "count": 1})
    restarts = counted("neanelu_bulk_restarts_total", reason="expired")
    summary = await harness.full_sync()  # one attempt: no retry of the whole run needed
    assert summary.status == "completed"
    await matches_shop(harness)
    statuses = Counter(op["status"] for op in await operations(harness, before))
    assert statuses == {"COMPLETED": len(PHASES), "EXPIRED": 1}
    assert counted("neanelu_bulk_restarts_total", reason="expired") == restarts + 1
    # The run now names the operation that replaced the expired one.
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run = await runs.get_run(conn, summary.run_id)
    assert run is not None
    expired = {op["id"] for op in await operations(harness, before) if op["status"] == "EXPIRED"}
    assert not expired & set(run.bulk_operations.values())


async def test_timeout_is_started_again_and_the_new_file_used(harness: SyncHarness) -> None:
    before = await existing(harness)
    await harness.control(
        "POST", "/faults", json={"kind": "bulk_timeout", "count": 1, "params": {"after_lines": 40}}
    )
    restarts = counted("neanelu_bulk_restarts_total", reason="timeout")
    summary = await harness.full_sync()
    assert summary.status == "completed"
    assert summary.complete
    await matches_shop(harness)
    failed = [op for op in await operations(harness, before) if op["status"] == "FAILED"]
    assert [op["error_code"] for op in failed] == ["TIMEOUT"]
    assert counted("neanelu_bulk_restarts_total", reason="timeout") == restarts + 1


async def test_restarts_are_bounded_and_keep_partial_data(harness: SyncHarness) -> None:
    # Every operation times out: each phase is tried 1 + MAX_RESTARTS times, then what the last
    # one left is merged and the attempt is given back for a retry.
    before = await existing(harness)
    await harness.control(
        "POST",
        "/faults",
        json={"kind": "bulk_timeout", "count": 100, "params": {"after_lines": 60}},
    )
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run_id = (await request_full_sync(conn, harness.shop_id)).id
    with pytest.raises(BulkOperationError, match="partial data") as info:
        await run_sync(harness.deps, harness.shop_id, run_id)
    assert info.value.retryable
    started = await operations(harness, before)
    assert len(started) == len(PHASES) * (1 + MAX_RESTARTS)
    assert {op["error_code"] for op in started} == {"TIMEOUT"}
    partial = await harness.stored()
    assert 0 < partial["products"] < (await harness.expected_counts())["products"]
    # Shopify recovers: the retried attempt completes the run.
    await harness.control("DELETE", "/faults")
    await run_sync(harness.deps, harness.shop_id, run_id)
    await matches_shop(harness)


async def test_failed_without_partial_data_is_retried_not_restarted(
    harness: SyncHarness,
) -> None:
    before = await existing(harness)
    await harness.control(
        "POST", "/faults", json={"kind": "bulk_failed", "count": 1, "params": {"after_lines": 0}}
    )
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run_id = (await request_full_sync(conn, harness.shop_id)).id
    with pytest.raises(BulkOperationError, match="INTERNAL_SERVER_ERROR") as info:
        await run_sync(harness.deps, harness.shop_id, run_id)
    assert info.value.retryable
    # Not started again within the attempt: an internal error is the retry's business.
    assert len(await operations(harness, before)) == len(PHASES)
    await run_sync(harness.deps, harness.shop_id, run_id)
    await matches_shop(harness)


@pytest.mark.parametrize("inventory_child_bytes", [None, 0], ids=["here", "in_child"])
async def test_expired_result_urls_are_replaced_without_a_retry(
    harness: SyncHarness, inventory_child_bytes: int | None
) -> None:
    harness.inventory_child_bytes = inventory_child_bytes
    before = await existing(harness)
    # The first URL of every file is issued already expired; asking again gives a fresh one.
    await harness.control("POST", "/faults", json={"kind": "expired_url", "count": len(PHASES)})
    renewals = counted("neanelu_bulk_url_renewals_total")
    summary = await harness.full_sync()
    assert summary.status == "completed"
    await matches_shop(harness)
    faults = (await harness.control("GET", "/faults")).json()["faults"]
    assert [f["fired"] for f in faults if f["kind"] == "expired_url"] == [len(PHASES)]
    # The inventory's renewal (in the child) is asked for by this process, so counted here.
    assert counted("neanelu_bulk_url_renewals_total") == renewals + len(PHASES)
    assert len(await operations(harness, before)) == len(PHASES)  # none started again
