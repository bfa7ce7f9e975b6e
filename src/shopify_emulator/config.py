"""Everything the emulator can be told, in one typed place.

The emulator is configured once per process through :class:`EmulatorConfig`; shops created later through
the control API take the same :class:`ShopConfig` shape. Defaults follow the protocol page.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass, field
from typing import Literal

from shopify_emulator.clock import Clock, SystemClock

PlanName = Literal["standard", "advanced", "plus", "enterprise"]
ChildOrder = Literal["grouped", "shuffled", "children_first"]

# Restore rates are Shopify's published figures; the bucket is ~20x the restore rate (observed 2000/100 and
# 20000/1000). Both are overridable per shop because the page marks the bucket size as uncertain.
PLAN_LIMITS: dict[str, tuple[float, float]] = {
    "standard": (100.0, 2000.0),
    "advanced": (200.0, 4000.0),
    "plus": (1000.0, 20000.0),
    "enterprise": (2000.0, 40000.0),
}

# The REST leaky bucket (legacy): 40 calls restored at 2/s, Plus 10x.
REST_LIMITS: dict[str, tuple[float, float]] = {
    "standard": (2.0, 40.0),
    "advanced": (2.0, 40.0),
    "plus": (20.0, 400.0),
    "enterprise": (20.0, 400.0),
}

SUPPORTED_VERSIONS: tuple[str, ...] = (
    "2025-07",
    "2025-10",
    "2026-01",
    "2026-04",
    "2026-07",
    "2026-10",
)
RELEASE_CANDIDATE = "2027-01"


@dataclass(frozen=True, slots=True)
class AppCredentials:
    """One Shopify app: what the merchant installs and what signs webhooks."""

    client_id: str
    client_secret: str
    # Shopify's numeric API client id: app-owned metafield namespaces are `app--{api_client_id}--...`.
    api_client_id: int
    scopes: tuple[str, ...] = (
        "read_products",
        "write_products",
        "read_inventory",
        "write_inventory",
    )
    # Where the mandatory compliance topics go (set in the app's TOML on real Shopify, not per shop).
    compliance_url: str | None = None


@dataclass(frozen=True, slots=True)
class ShopConfig:
    """One emulated shop: `{name}.myshopify.com`."""

    name: str
    products: int = 100
    seed: int = 1
    plan: PlanName = "standard"
    restore_rate: float | None = None
    bucket_size: float | None = None

    @property
    def domain(self) -> str:
        return f"{self.name}.myshopify.com"

    def limits(self) -> tuple[float, float]:
        rate, size = PLAN_LIMITS[self.plan]
        return (self.restore_rate or rate, self.bucket_size or size)


@dataclass(frozen=True, slots=True)
class CatalogShape:
    """How generated products look. Means are approximate; maxima are hard caps."""

    variants_mean: float = 3.0
    variants_max: int = 2048
    # One product in this many gets `variants_max` variants, so huge products appear in big catalogs.
    huge_product_every: int = 100_000
    metafields_per_product: float = 2.0
    metafields_per_variant: float = 1.0
    # One product in this many carries an app-owned metafield of the primary app.
    app_owned_every: int = 5
    locations: int = 2
    images_max: int = 3


@dataclass(slots=True)
class EmulatorConfig:
    """The whole emulator: apps, shops, catalog shape, bulk and webhook behaviour, time scale."""

    client_id: str = "emulator-client-id"
    client_secret: str = "shpss_emulator_client_secret_0123456789"  # noqa: S105 - a test app's secret, not a real one
    api_client_id: int = 1_000_001
    scopes: tuple[str, ...] = (
        "read_products",
        "write_products",
        "read_inventory",
        "write_inventory",
    )
    compliance_url: str | None = None
    # A second installed app: lets tests prove app-owned metafields stay private to their owner.
    other_app: AppCredentials | None = field(
        default_factory=lambda: AppCredentials(
            client_id="other-client-id",
            client_secret="shpss_other_app_client_secret_987654321",  # noqa: S106
            api_client_id=2_000_002,
        )
    )
    shops: list[ShopConfig] = field(default_factory=lambda: [ShopConfig(name="demo")])
    catalog: CatalogShape = field(default_factory=CatalogShape)
    # Bulk: lines per second (0 = as fast as the machine goes), child order for groupObjects:false.
    bulk_lines_per_s: float = 0.0
    bulk_child_order: ChildOrder = "shuffled"
    bulk_dir: str = field(default_factory=lambda: tempfile.gettempdir())
    bulk_url_ttl_s: float = 7 * 24 * 3600.0
    # Whole-catalog exports of at least `bulk_shard_min_products` products are written by this many
    # processes (see bulk_shards); 1 keeps every export on one thread.
    bulk_workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))
    bulk_shard_min_products: int = 20_000
    bulk_max_connection_depth: int = 2
    bulk_max_connections: int = 5
    # Webhooks: retries follow Shopify's 8 retries over ~4 hours, multiplied by time_scale.
    time_scale: float = 1.0
    webhook_retries: int = 8
    webhook_retry_base_s: float = 56.0
    # Real seconds (not scaled): the timeout measures the receiver, not the emulated clock.
    webhook_timeout_s: float = 5.0
    webhook_remove_after_failures: bool = True
    webhook_reorder_window_s: float = 0.2
    shop_redact_after_uninstall_s: float = 48 * 3600.0
    # OAuth token lifetimes.
    access_token_ttl_s: float = 3600.0
    refresh_token_ttl_s: float = 90 * 24 * 3600.0
    max_query_cost: int = 1000
    default_api_version: str = "2026-01"
    supported_versions: tuple[str, ...] = SUPPORTED_VERSIONS
    # Used to sign file URLs; random per process unless pinned for reproducible URLs.
    file_signing_key: bytes = b""
    # Absolute base of result-file URLs, as a storage host would be (`https://storage.googleapis.com`);
    # the emulator's own address when empty, so the links resolve to it over loopback.
    public_base_url: str = ""
    # What "now" is for expiry, refills and stamps: real time unless a test injects a ManualClock.
    clock: Clock = field(default_factory=SystemClock, compare=False, repr=False)

    def primary_app(self) -> AppCredentials:
        return AppCredentials(
            client_id=self.client_id,
            client_secret=self.client_secret,
            api_client_id=self.api_client_id,
            scopes=self.scopes,
            compliance_url=self.compliance_url,
        )

    def apps(self) -> list[AppCredentials]:
        apps = [self.primary_app()]
        if self.other_app is not None:
            apps.append(self.other_app)
        return apps

    def replace(self, **changes: object) -> EmulatorConfig:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
