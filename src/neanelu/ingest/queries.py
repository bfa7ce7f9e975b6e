"""The three bulk queries of a full sync. Every node asks for `__typename` so each line says what
it is without the parser guessing from field names; children carry `__parentId`."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    CORE = "core"
    # Metafields take two operations: Shopify allows connections nested two levels deep, so
    # products -> variants -> metafields cannot be one query.
    METAFIELDS = "metafields"
    VARIANT_METAFIELDS = "variant_metafields"
    INVENTORY = "inventory"


_METAFIELD_NODE = (
    "metafields { edges { node { __typename id namespace key type value updatedAt } } }"
)

_CORE = """
{ products%(filter)s { edges { node {
    __typename id handle title vendor productType status tags descriptionHtml createdAt updatedAt
    variants { edges { node {
      __typename id sku title price compareAtPrice barcode position inventoryQuantity
      createdAt updatedAt selectedOptions { name value } inventoryItem { id }
    } } }
} } } }
"""

_METAFIELDS = """
{ products%(filter)s { edges { node { __typename id %(metafields)s } } } }
"""

_VARIANT_METAFIELDS = """
{ productVariants%(filter)s { edges { node { __typename id %(metafields)s } } } }
"""

_INVENTORY = """
{ inventoryItems%(filter)s { edges { node {
    __typename id
    inventoryLevels { edges { node {
      __typename id location { id } quantities(names: ["available"]) { name quantity } updatedAt
    } } }
} } } }
"""


def bulk_query(phase: Phase, updated_since: str | None = None) -> str:
    """The query text; `updated_since` (ISO 8601) narrows an incremental reconciliation."""
    filter_ = f"(query: \"updated_at:>'{updated_since}'\")" if updated_since else ""
    template = {
        Phase.CORE: _CORE,
        Phase.METAFIELDS: _METAFIELDS,
        Phase.VARIANT_METAFIELDS: _VARIANT_METAFIELDS,
        Phase.INVENTORY: _INVENTORY,
    }[phase]
    return template % {"filter": filter_, "metafields": _METAFIELD_NODE}
