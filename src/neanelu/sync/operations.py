"""Starting (or finding again) a run's bulk operations and waiting until each has ended: the same
steps for this app's four queries and for each owner app's two.

An operation that ends EXPIRED (its file is gone) or FAILED with TIMEOUT (Shopify gave up on the
query) is started again in the same run, at most `MAX_RESTARTS` times, instead of failing the
whole attempt; what is left after that is judged as usual (shopify/bulk.py `judge`: partial data
kept, the attempt retried).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from neanelu.ingest.queries import Phase, bulk_query
from neanelu.shopify.bulk import (
    DEFAULT_POLLING,
    BulkOperation,
    BulkPolling,
    BulkResult,
    BulkStatus,
    get_operation,
    judge,
    runs_concurrently,
    start_bulk_query,
    wait_for_operation,
)
from neanelu.shopify.errors import BulkOperationError
from neanelu.shopify.graphql import AdminClient
from neanelu.telemetry import current_metrics

log = logging.getLogger(__name__)

MAX_RESTARTS = 2


class RecordOperation(Protocol):
    async def __call__(self, key: str, operation_id: str) -> None:
        """Note the operation on the run under `key`, so a later attempt finds it again."""


async def reusable(client: AdminClient, operation_id: str) -> bool:
    """A previous attempt's operation is reused unless it can no longer give a file."""
    try:
        operation = await get_operation(client, operation_id)
    except BulkOperationError:
        return False
    if operation.status in (BulkStatus.CREATED, BulkStatus.RUNNING):
        return True
    if operation.status is BulkStatus.COMPLETED:
        return operation.url is not None or operation.object_count == 0
    return False


def restart_reason(operation: BulkOperation) -> str | None:
    """Why the operation is worth starting again (None: judge it as it is)."""
    if operation.status is BulkStatus.EXPIRED:
        return "expired"
    if operation.status is BulkStatus.FAILED and operation.error_code == "TIMEOUT":
        return "timeout"
    return None


def judged(client: AdminClient, operation: BulkOperation) -> BulkResult:
    """The operation judged, its result able to ask Shopify again for a fresh URL of the same
    file (the storage host refuses a URL once it has expired)."""
    result = judge(operation)
    if result.url is None:
        return result

    async def renew() -> str | None:
        again = await get_operation(client, operation.id)
        current_metrics().bulk_url_renewals.inc()
        return again.url if result.complete else again.partial_data_url

    return replace(result, renew=renew)


async def run_operations(
    client: AdminClient,
    phases: Sequence[Phase],
    key: Callable[[Phase], str],
    known: dict[str, str],
    since: str | None,
    record: RecordOperation,
    polling: BulkPolling = DEFAULT_POLLING,
) -> dict[Phase, BulkResult]:
    """Each phase's operation (the one `known[key(phase)]` names while it can still give a file,
    else a new one, recorded), then each judged once ended."""
    concurrent = runs_concurrently(client)
    ids: dict[Phase, str] = {}
    for phase in phases:
        previous = known.get(key(phase))
        if previous and await reusable(client, previous):
            ids[phase] = previous
            continue
        if not concurrent and ids:
            # One bulk query at a time: the previous one must end before this one starts.
            await wait_for_operation(client, list(ids.values())[-1], polling)
        ids[phase] = await start_bulk_query(client, bulk_query(phase, since))
        await record(key(phase), ids[phase])

    async def settle(phase: Phase) -> BulkResult:
        operation = await wait_for_operation(client, ids[phase], polling)
        for _ in range(MAX_RESTARTS):
            reason = restart_reason(operation)
            if reason is None:
                break
            current_metrics().bulk_restarts.labels(reason).inc()
            log.warning(
                "%s: bulk operation %s ended %s; starting it again",
                key(phase),
                operation.id,
                operation.error_code or operation.status.value,
            )
            ids[phase] = await start_bulk_query(client, bulk_query(phase, since))
            await record(key(phase), ids[phase])
            operation = await wait_for_operation(client, ids[phase], polling)
        return judged(client, operation)

    results = await asyncio.gather(*(settle(p) for p in phases))
    return dict(zip(phases, results, strict=True))
