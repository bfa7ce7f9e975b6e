"""App-owned metafields of other apps (addendum C): read with the owner app's token, or reported.

Shopify shows `app--{id}` namespaces only to app `id`. For each owner app registered for the shop
the sync runs the two metafields bulk queries again with that app's token and keeps, from what it
sees, only the owner's own namespaces. An owner without a token, or whose queries fail, is
reported unavailable with the reason, and the merge keeps what is stored of its metafields instead
of replacing them with nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from neanelu.ingest.queries import Phase, bulk_query
from neanelu.shopify.bulk import (
    BulkResult,
    judge,
    runs_concurrently,
    start_bulk_query,
    wait_for_operation,
)
from neanelu.shopify.errors import AccessDenied, BulkOperationError, InvalidToken
from neanelu.shopify.graphql import AdminClient

# The metafields queries, asked again with each owner app's token.
OWNER_PHASES = (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS)


@dataclass(frozen=True, slots=True)
class OwnerApp:
    api_client_id: int
    name: str = ""
    # None: registered without a token, so its metafields cannot be read.
    client: AdminClient | None = field(default=None, repr=False)

    @property
    def namespace(self) -> str:
        return f"app--{self.api_client_id}"

    def owns(self, namespace: str) -> bool:
        """`app--{id}` itself and its sub-namespaces `app--{id}--x` (not `app--{id}0`)."""
        return namespace == self.namespace or namespace.startswith(self.namespace + "--")

    def patterns(self) -> list[str]:
        """LIKE patterns of its keys (`namespace.key`) in a stored metafields object."""
        return [f"{self.namespace}.%", f"{self.namespace}--%"]

    def operation_key(self, phase: Phase) -> str:
        """Where the run records this owner's bulk operation of `phase`."""
        return f"{phase.value}@{self.namespace}"


class OwnerAppSource(Protocol):
    async def owner_apps(self, shop_id: UUID) -> list[OwnerApp]:
        """The shop's registered owner apps, each with a client when a token is registered."""


class ReuseCheck(Protocol):
    async def __call__(self, client: AdminClient, operation_id: str) -> bool: ...


class RecordOperation(Protocol):
    async def __call__(self, key: str, operation_id: str) -> None: ...


@dataclass(slots=True)
class OwnerOutcome:
    app: OwnerApp
    results: dict[Phase, BulkResult] = field(default_factory=dict)
    # Why its metafields are (partly) unavailable; None when both files came complete.
    unavailable: str | None = None


async def owner_results(
    app: OwnerApp,
    known: dict[str, str],
    since: str | None,
    reusable: ReuseCheck,
    record: RecordOperation,
) -> OwnerOutcome:
    """Run (or find again) the owner's metafields queries; errors that a retry of the whole sync
    cannot mend (no token, access denied, a refused token) make it unavailable, not the run fail."""
    outcome = OwnerOutcome(app)
    client = app.client
    if client is None:
        outcome.unavailable = "no token registered for this owner app"
        return outcome
    try:
        ids: dict[Phase, str] = {}
        for phase in OWNER_PHASES:
            previous = known.get(app.operation_key(phase))
            if previous and await reusable(client, previous):
                ids[phase] = previous
                continue
            if not runs_concurrently(client) and ids:
                await wait_for_operation(client, next(iter(ids.values())))
            ids[phase] = await start_bulk_query(client, bulk_query(phase, since))
            await record(app.operation_key(phase), ids[phase])
        finished = await asyncio.gather(*(wait_for_operation(client, ids[p]) for p in OWNER_PHASES))
        outcome.results = {p: judge(op) for p, op in zip(OWNER_PHASES, finished, strict=True)}
    except (AccessDenied, InvalidToken) as exc:
        outcome.unavailable = f"Shopify refused the owner app's token: {exc}"
    except BulkOperationError as exc:
        if exc.retryable:
            raise
        outcome.unavailable = f"bulk query failed: {exc}"
    else:
        partial = [p.value for p, r in outcome.results.items() if not r.complete]
        if partial:
            outcome.unavailable = f"{', '.join(partial)} ended FAILED: kept partial data"
    return outcome
