"""Starting (or finding again) a run's bulk operations and waiting until each has ended: the same
steps for this app's four queries and for each owner app's two."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Protocol

from neanelu.ingest.queries import Phase, bulk_query
from neanelu.shopify.bulk import (
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


async def run_operations(
    client: AdminClient,
    phases: Sequence[Phase],
    key: Callable[[Phase], str],
    known: dict[str, str],
    since: str | None,
    record: RecordOperation,
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
            await wait_for_operation(client, list(ids.values())[-1])
        ids[phase] = await start_bulk_query(client, bulk_query(phase, since))
        await record(key(phase), ids[phase])
    finished = await asyncio.gather(*(wait_for_operation(client, ids[p]) for p in phases))
    return {phase: judge(op) for phase, op in zip(phases, finished, strict=True)}
