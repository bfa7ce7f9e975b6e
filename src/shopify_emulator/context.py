"""What a resolver runs with: the request's context, its error type, and the services it may call.

Resolvers start bulk runs and fire webhooks, but the bulk runner and the webhook dispatcher sit above
them (they execute GraphQL themselves). The context therefore names those services by the Protocols
below, never by their classes, so the import graph stays one-way (the emulator's layers contract in
pyproject.toml checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from shopify_emulator.catalog import Catalog
from shopify_emulator.config import AppCredentials
from shopify_emulator.model import BulkOperation
from shopify_emulator.state import EmulatorState, ShopState


class ResolveError(Exception):
    """A GraphQL error with Shopify's `extensions.code`."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


UserErrors = list[dict[str, Any]]


class StagedUploads(Protocol):
    """`stagedUploadsCreate`: where a client may upload a file (see staged.StagedFiles)."""

    def targets(self, ctx: Context, inputs: list[dict[str, Any]]) -> dict[str, Any]: ...


class BulkService(Protocol):
    """The bulk operations a resolver starts, cancels and links to (see bulk.BulkRunner)."""

    @property
    def staged(self) -> StagedUploads: ...

    def start(
        self, ctx: Context, query: str, group_objects: bool | None
    ) -> tuple[BulkOperation | None, UserErrors]: ...

    def start_mutation(
        self, ctx: Context, mutation: str, staged_path: str
    ) -> tuple[BulkOperation | None, UserErrors]: ...

    def cancel(self, ctx: Context, op: BulkOperation) -> UserErrors: ...

    def url_for(self, op: BulkOperation, *, partial: bool, base_url: str) -> str | None: ...


class WebhookSink(Protocol):
    """Where a mutation's webhook goes (see webhooks.Dispatcher, bulk_mutation.LoopDispatcher)."""

    def fire(self, shop: ShopState, topic: str, payload: dict[str, Any]) -> object: ...


@dataclass(slots=True)
class Context:
    state: EmulatorState
    shop: ShopState
    app: AppCredentials
    scopes: tuple[str, ...]
    api_version: str
    bulk: BulkService | None = None
    dispatcher: WebhookSink | None = None
    actual_cost: int = 0
    base_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def catalog(self) -> Catalog:
        return self.shop.catalog
