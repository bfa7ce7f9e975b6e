"""Webhook topics in their header form, grouped by what the app does with them."""

from __future__ import annotations

from typing import Final

PRODUCTS_CREATE: Final = "products/create"
PRODUCTS_UPDATE: Final = "products/update"
PRODUCTS_DELETE: Final = "products/delete"
INVENTORY_LEVELS_UPDATE: Final = "inventory_levels/update"
APP_UNINSTALLED: Final = "app/uninstalled"
APP_SCOPES_UPDATE: Final = "app/scopes_update"
BULK_OPERATIONS_FINISH: Final = "bulk_operations/finish"
CUSTOMERS_DATA_REQUEST: Final = "customers/data_request"
CUSTOMERS_REDACT: Final = "customers/redact"
SHOP_REDACT: Final = "shop/redact"

# Catalog changes, the bulk of the traffic: a job applies a run of them set-based
# (webhooks/catalog_batch.py), the other topics one by one.
CATALOG: Final = frozenset(
    {PRODUCTS_CREATE, PRODUCTS_UPDATE, PRODUCTS_DELETE, INVENTORY_LEVELS_UPDATE}
)
COMPLIANCE: Final = frozenset({CUSTOMERS_DATA_REQUEST, CUSTOMERS_REDACT, SHOP_REDACT})
# Accepted even after an uninstall: Shopify sends the redactions days later, and a duplicate of
# the uninstall itself must still be acknowledged.
AFTER_UNINSTALL: Final = COMPLIANCE | {APP_UNINSTALLED}
