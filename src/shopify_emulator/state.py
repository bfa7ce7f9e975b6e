"""The emulator's mutable state: shops, their tokens, subscriptions, buckets and faults.

Everything lives in one process; there is no persistence because every run starts from the seed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from shopify_emulator import ids
from shopify_emulator.catalog import Catalog
from shopify_emulator.clock import Clock, SystemClock
from shopify_emulator.config import REST_LIMITS, AppCredentials, EmulatorConfig, ShopConfig
from shopify_emulator.faults import FaultBoard
from shopify_emulator.model import BulkOperation
from shopify_emulator.ratelimit import LeakyBucket

# Webhook topics as GraphQL enum values and as header strings.
TOPICS: dict[str, str] = {
    "PRODUCTS_CREATE": "products/create",
    "PRODUCTS_UPDATE": "products/update",
    "PRODUCTS_DELETE": "products/delete",
    "INVENTORY_LEVELS_UPDATE": "inventory_levels/update",
    "APP_UNINSTALLED": "app/uninstalled",
    "APP_SCOPES_UPDATE": "app/scopes_update",
    "BULK_OPERATIONS_FINISH": "bulk_operations/finish",
}
COMPLIANCE_TOPICS = ("customers/data_request", "customers/redact", "shop/redact")


@dataclass(slots=True)
class AccessToken:
    value: str
    app: AppCredentials
    shop: str
    scopes: tuple[str, ...]
    expires_at: float | None
    online: bool = False
    revoked: bool = False

    def valid(self, now: float) -> bool:
        return not self.revoked and (self.expires_at is None or now < self.expires_at)


@dataclass(slots=True)
class RefreshToken:
    value: str
    app: AppCredentials
    shop: str
    scopes: tuple[str, ...]
    expires_at: float
    parent: str | None = None
    revoked: bool = False


@dataclass(slots=True)
class WebhookSubscription:
    id: int
    topic: str  # enum form, e.g. PRODUCTS_UPDATE
    uri: str
    client_id: str
    api_version: str
    created_at: str
    format: str = "JSON"


@dataclass(frozen=True, slots=True)
class ServedFile:
    """Exact bytes the next bulk run whose query contains `query_contains` serves as its result."""

    query_contains: str
    content: bytes


@dataclass(slots=True)
class ShopState:
    config: ShopConfig
    shop_id: int
    catalog: Catalog
    clock: Clock = field(default_factory=SystemClock)
    faults: FaultBoard = field(init=False)
    tokens: dict[str, AccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, tuple[str, float, tuple[str, ...], bool]] = field(default_factory=dict)
    subscriptions: dict[int, WebhookSubscription] = field(default_factory=dict)
    bulk_operations: dict[int, BulkOperation] = field(default_factory=dict)
    buckets: dict[str, LeakyBucket] = field(default_factory=dict)
    rest_buckets: dict[str, LeakyBucket] = field(default_factory=dict)
    granted_scopes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    webhook_mode: str = "normal"
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    served_files: list[ServedFile] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.faults = FaultBoard(self.clock)

    def take_served_file(self, query: str) -> ServedFile | None:
        """The first pending served file whose text the query contains, taken off the list."""
        for index, served in enumerate(self.served_files):
            if served.query_contains in query:
                return self.served_files.pop(index)
        return None

    @property
    def domain(self) -> str:
        return self.config.domain

    def bucket(self, client_id: str) -> LeakyBucket:
        bucket = self.buckets.get(client_id)
        if bucket is None:
            rate, size = self.config.limits()
            bucket = LeakyBucket(size=size, restore_rate=rate, clock=self.clock.monotonic)
            self.buckets[client_id] = bucket
        return bucket

    def rest_bucket(self, client_id: str) -> LeakyBucket:
        bucket = self.rest_buckets.get(client_id)
        if bucket is None:
            rate, size = REST_LIMITS[self.config.plan]
            bucket = LeakyBucket(size=size, restore_rate=rate, clock=self.clock.monotonic)
            self.rest_buckets[client_id] = bucket
        return bucket

    def shop_json(self) -> dict[str, Any]:
        """The REST shop object: `shop.json` and the `app/uninstalled` payload."""
        return {
            "id": self.shop_id,
            "name": self.config.name.replace("-", " ").title(),
            "email": f"owner@{self.domain}",
            "domain": self.domain,
            "myshopify_domain": self.domain,
            "plan_name": self.config.plan,
            "plan_display_name": self.config.plan.title(),
            "currency": "EUR",
            "iana_timezone": "Europe/Bucharest",
            "country_code": "RO",
            # REST gives times in the shop's own offset (Europe/Bucharest is +02:00 in January).
            "created_at": "2019-01-01T02:00:00+02:00",
            "admin_graphql_api_id": ids.gid("Shop", self.shop_id),
        }


class EmulatorState:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = config.clock
        self.apps: dict[str, AppCredentials] = {app.client_id: app for app in config.apps()}
        self.signing_key = config.file_signing_key or secrets.token_bytes(32)
        self.shops: dict[str, ShopState] = {}
        self._next_id = 1
        for shop in config.shops:
            self.add_shop(shop)

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def add_shop(self, shop: ShopConfig) -> ShopState:
        if shop.domain in self.shops:
            raise ValueError(f"shop {shop.name!r} exists")
        catalog = Catalog(
            self.config.catalog, shop.seed, shop.products, self.config.api_client_id, self.clock
        )
        state = ShopState(
            config=shop,
            shop_id=ids.SHOP_BASE + len(self.shops) + 1,
            catalog=catalog,
            clock=self.clock,
        )
        self.shops[shop.domain] = state
        return state

    def shop_for_host(self, host: str | None) -> ShopState | None:
        if not host:
            return None
        return self.shops.get(host.split(":", 1)[0].lower())

    def shop_named(self, name: str) -> ShopState | None:
        domain = name if name.endswith(".myshopify.com") else f"{name}.myshopify.com"
        return self.shops.get(domain.lower())

    def issue_token(
        self,
        shop: ShopState,
        app: AppCredentials,
        scopes: tuple[str, ...],
        *,
        expiring: bool,
        online: bool = False,
    ) -> tuple[AccessToken, RefreshToken | None]:
        ttl = self.config.access_token_ttl_s
        now = self.clock.time()
        access = AccessToken(
            value=f"shpat_{secrets.token_hex(16)}",
            app=app,
            shop=shop.domain,
            scopes=scopes,
            expires_at=now + ttl if (expiring or online) else None,
            online=online,
        )
        shop.tokens[access.value] = access
        shop.granted_scopes[app.client_id] = scopes
        refresh: RefreshToken | None = None
        if expiring and not online:
            refresh = RefreshToken(
                value=f"shprt_{secrets.token_hex(16)}",
                app=app,
                shop=shop.domain,
                scopes=scopes,
                expires_at=now + self.config.refresh_token_ttl_s,
            )
            shop.refresh_tokens[refresh.value] = refresh
        return access, refresh

    def revoke_tokens(self, shop: ShopState, client_id: str | None = None) -> int:
        revoked = 0
        for token in shop.tokens.values():
            if (client_id is None or token.app.client_id == client_id) and not token.revoked:
                token.revoked = True
                revoked += 1
        for refresh in shop.refresh_tokens.values():
            if client_id is None or refresh.app.client_id == client_id:
                refresh.revoked = True
        return revoked
