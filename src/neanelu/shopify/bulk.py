"""Bulk operations: start a query, wait for it, and judge its result by the protocol's rules."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from neanelu.shopify.errors import AccessDenied, BulkOperationError, QueryError
from neanelu.shopify.graphql import AdminClient
from neanelu.telemetry.metrics import current_metrics

log = logging.getLogger(__name__)

RUN_QUERY = """
mutation RunBulk($query: String!, $groupObjects: Boolean!) {
  bulkOperationRunQuery(query: $query, groupObjects: $groupObjects) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""

OPERATION_FIELDS = """
  id status errorCode createdAt completedAt objectCount rootObjectCount fileSize url partialDataUrl
"""

GET_OPERATION = f"""
query BulkOp($id: ID!) {{ bulkOperation(id: $id) {{ {OPERATION_FIELDS} }} }}
"""

# From API 2026-01 an app runs up to five bulk queries per shop at once; before, one at a time.
CONCURRENT_FROM_VERSION = "2026-01"


def runs_concurrently(client: AdminClient) -> bool:
    return client.endpoint.api_version >= CONCURRENT_FROM_VERSION


class BulkStatus(StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELING = "CANCELING"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


TERMINAL = frozenset(
    {BulkStatus.COMPLETED, BulkStatus.CANCELED, BulkStatus.FAILED, BulkStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class BulkOperation:
    id: str
    status: BulkStatus
    error_code: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    file_size: int = 0
    url: str | None = None
    partial_data_url: str | None = None

    @classmethod
    def from_graphql(cls, raw: dict[str, Any]) -> BulkOperation:
        return cls(
            id=str(raw["id"]),
            status=BulkStatus(str(raw["status"]).upper()),
            error_code=raw.get("errorCode"),
            object_count=int(raw.get("objectCount") or 0),
            root_object_count=int(raw.get("rootObjectCount") or 0),
            file_size=int(raw.get("fileSize") or 0),
            url=raw.get("url"),
            partial_data_url=raw.get("partialDataUrl"),
        )


# Asks Shopify for the operation again and returns its current file URL (None: no file any more).
UrlRenewer = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What to download: the whole file, or the part a FAILED operation left (`complete` False).
    `renew` fetches a fresh URL when the storage host refuses this one as expired (None where
    Shopify cannot be asked, e.g. across a process boundary)."""

    operation: BulkOperation
    url: str | None
    complete: bool
    renew: UrlRenewer | None = field(default=None, repr=False, compare=False)


class FinishSignal(Protocol):
    """Something that learns when an operation ends sooner than a poll (the
    `bulk_operations/finish` webhook), passed in by the caller: this layer has no Redis."""

    async def wait(self, operation_id: str, timeout: float) -> bool:
        """True when the operation was reported finished within `timeout` seconds."""


@dataclass(frozen=True, slots=True)
class BulkPolling:
    """How a wait polls: from `first_poll` seconds, growing by half up to `max_poll`; a
    `signal` cuts each pause short (polling stays, for a webhook that never comes)."""

    first_poll: float = 0.2
    max_poll: float = 10.0
    signal: FinishSignal | None = None


DEFAULT_POLLING = BulkPolling()


async def start_bulk_query(
    client: AdminClient, query: str, *, group_objects: bool = False, wait_in_progress: float = 600.0
) -> str:
    """Start a bulk query and return its id. OPERATION_IN_PROGRESS (another operation holds the
    shop's slot) waits with backoff up to `wait_in_progress` seconds."""
    delay, waited = 1.0, 0.0
    while True:
        result = await client.execute(
            RUN_QUERY, {"query": query, "groupObjects": group_objects}, estimated_cost=10
        )
        payload = result.data.get("bulkOperationRunQuery") or {}
        errors = payload.get("userErrors") or []
        if not errors and payload.get("bulkOperation"):
            return str(payload["bulkOperation"]["id"])
        codes = {e.get("code") for e in errors}
        message = "; ".join(str(e.get("message")) for e in errors) or "no bulk operation returned"
        if codes & {"OPERATION_IN_PROGRESS", "LIMIT_REACHED"} and waited < wait_in_progress:
            await asyncio.sleep(delay)
            waited += delay
            delay = min(delay * 2, 30.0)
            continue
        if "ACCESS_DENIED" in codes:
            raise AccessDenied(f"bulk query refused: {message}")
        raise QueryError(f"bulk query refused: {message}", next(iter(codes), None))


async def get_operation(client: AdminClient, operation_id: str) -> BulkOperation:
    result = await client.execute(GET_OPERATION, {"id": operation_id}, estimated_cost=2)
    raw = result.data.get("bulkOperation")
    if not raw:
        raise BulkOperationError(f"bulk operation {operation_id} not found", retryable=False)
    return BulkOperation.from_graphql(raw)


async def wait_for_operation(
    client: AdminClient, operation_id: str, polling: BulkPolling = DEFAULT_POLLING
) -> BulkOperation:
    """Poll with backoff until the operation ends; each pause ends early when the signal reports
    the operation finished. Every wake-up is counted by its reason (webhook or poll)."""
    delay = polling.first_poll
    wakeups = current_metrics().bulk_wakeups
    while True:
        operation = await get_operation(client, operation_id)
        if operation.status in TERMINAL:
            return operation
        if polling.signal is None:
            await asyncio.sleep(delay)
            woken = False
        else:
            woken = await polling.signal.wait(operation_id, delay)
        if woken:
            log.debug("bulk operation %s: woken by bulk_operations/finish", operation_id)
        wakeups.labels("webhook" if woken else "poll").inc()
        delay = min(delay * 1.5, polling.max_poll)


def judge(operation: BulkOperation) -> BulkResult:
    """Turn a finished operation into something to download, or an error. Never an empty success
    when Shopify counted objects but gave no file (a peer connector silently loses data there)."""
    if operation.status is BulkStatus.COMPLETED:
        if operation.url:
            return BulkResult(operation, operation.url, complete=True)
        if operation.object_count > 0:
            raise BulkOperationError(
                f"bulk operation {operation.id} COMPLETED with {operation.object_count} objects "
                "but no url",
                retryable=True,
            )
        return BulkResult(operation, None, complete=True)
    if operation.status is BulkStatus.FAILED:
        code = operation.error_code
        if code == "ACCESS_DENIED":
            raise BulkOperationError(
                f"bulk operation {operation.id} failed: ACCESS_DENIED (missing scope or revoked)",
                retryable=False,
                error_code=code,
            )
        if operation.partial_data_url:
            return BulkResult(operation, operation.partial_data_url, complete=False)
        raise BulkOperationError(
            f"bulk operation {operation.id} failed: {code or 'unknown error'}",
            retryable=code in (None, "TIMEOUT", "INTERNAL_SERVER_ERROR"),
            error_code=code,
        )
    raise BulkOperationError(
        f"bulk operation {operation.id} ended {operation.status.value}",
        retryable=operation.status is BulkStatus.EXPIRED,
    )
