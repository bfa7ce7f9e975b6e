"""A Shopify emulator: OAuth, Admin GraphQL with cost limits, bulk operations and webhooks over HTTP.

It imports nothing from `neanelu`, and `neanelu` nothing from it: the project reaches it only over HTTP.
"""

from shopify_emulator.app import create_app
from shopify_emulator.config import AppCredentials, CatalogShape, EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread

__all__ = [
    "AppCredentials",
    "CatalogShape",
    "EmulatorConfig",
    "RunningEmulator",
    "ShopConfig",
    "create_app",
    "start_in_thread",
]
