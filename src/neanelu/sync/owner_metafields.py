"""App-owned metafields of other apps (addendum C): read with the owner app's token, or reported.

Shopify shows `app--{id}` namespaces only to app `id`. For each owner app registered for the shop
the sync runs the two metafields bulk queries again with that app's token and keeps, from what it
sees, only the owner's own namespaces. An owner without a token, or whose queries fail, is
reported unavailable with the reason, and the merge keeps what is stored of its metafields instead
of replacing them with nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from neanelu.ingest.queries import Phase
from neanelu.shopify.bulk import DEFAULT_POLLING, BulkPolling, BulkResult
from neanelu.shopify.errors import AccessDenied, BulkOperationError, InvalidToken
from neanelu.shopify.graphql import AdminClient
from neanelu.sync.operations import RecordOperation, run_operations

# The metafields queries, asked again with each owner app's token.
OWNER_PHASES = (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS)


def owned_by(owner: str, namespace: str) -> bool:
    """`app--{id}` itself and its sub-namespaces `app--{id}--x` (not `app--{id}0`)."""
    return namespace == owner or namespace.startswith(owner + "--")


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
        return owned_by(self.namespace, namespace)

    def patterns(self) -> list[str]:
        """LIKE patterns of its keys (`namespace.key`) in a stored metafields object."""
        return [f"{self.namespace}.%", f"{self.namespace}--%"]

    def operation_key(self, phase: Phase) -> str:
        """Where the run records this owner's bulk operation of `phase`."""
        return f"{phase.value}@{self.namespace}"


class OwnerAppSource(Protocol):
    async def owner_apps(self, shop_id: UUID) -> list[OwnerApp]:
        """The shop's registered owner apps, each with a client when a token is registered."""


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
    record: RecordOperation,
    polling: BulkPolling = DEFAULT_POLLING,
) -> OwnerOutcome:
    """Run (or find again) the owner's metafields queries; errors that a retry of the whole sync
    cannot mend (no token, access denied, a refused token) make it unavailable, not the run fail."""
    outcome = OwnerOutcome(app)
    client = app.client
    if client is None:
        outcome.unavailable = "no token registered for this owner app"
        return outcome
    try:
        outcome.results = await run_operations(
            client, OWNER_PHASES, app.operation_key, known, since, record, polling
        )
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
