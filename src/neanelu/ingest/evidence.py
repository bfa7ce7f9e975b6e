"""What a quarantined line still says: the ids it names, which the sweeps must not take as gone.

After a complete full sync, stored rows missing from staging are taken as gone from Shopify, and a
complete metafields file replaces each owner's stored metafields. A quarantined line is missing
from staging without being evidence of absence, so every id it names is protected:

- products, variants: a bad core line naming `"id":"gid://shopify/Product/N"` (or ProductVariant)
  keeps that stored row as it is (reported as kept);
- metafields: a bad metafields line naming an owner (its `__parentId`, or the `id` of a parent
  line) has that owner's stored metafields kept, the file's merged over them;
- inventory levels: a bad inventory line naming a level (`"id"`) or an inventory item keeps the
  stored levels it names. A level GID's number is its location's (Shopify's form), so a bad
  level line keeps every level at that location for the run.

A bad line naming none of these (its ids cut off or unreadable) protects the whole kind: the
phase's sweep is skipped for this run (core: products and variants; inventory: levels) or its
owners' metafields are merged over the stored ones, and the run reports it. Naming too much is
harmless (a row is kept one more run); naming too little would delete what Shopify still has.

Ids are found by a byte scan, so lines that are not UTF-8 or not JSON still give theirs.
"""

from __future__ import annotations

import re

from neanelu.ingest.queries import Phase

# `"id":"gid://shopify/Product/123"`, `"__parentId":"gid://..."`; level ids carry `?...` after the
# number. The closing quote (or `?`) is required: a line cut inside an id names nothing.
_GID = re.compile(rb'"(id|__parentId)"\s*:\s*"gid://shopify/([A-Za-z]+)/([0-9]{1,19})(?=[?"])')

# (key, type) -> what is protected: the row (P, V), an owner's metafields (MP, MV), a level (L) or
# an inventory item's levels (I).
_KINDS: dict[Phase, dict[tuple[bytes, bytes], str]] = {
    Phase.CORE: {(b"id", b"Product"): "P", (b"id", b"ProductVariant"): "V"},
    Phase.METAFIELDS: {
        (b"id", b"Product"): "MP",
        (b"__parentId", b"Product"): "MP",
        (b"id", b"ProductVariant"): "MV",
        (b"__parentId", b"ProductVariant"): "MV",
    },
    Phase.INVENTORY: {
        (b"id", b"InventoryLevel"): "L",
        (b"id", b"InventoryItem"): "I",
        (b"__parentId", b"InventoryItem"): "I",
    },
}
_KINDS[Phase.VARIANT_METAFIELDS] = _KINDS[Phase.METAFIELDS]

_MAX_ID = (1 << 63) - 1


def named_ids(phase: Phase, line: bytes) -> list[tuple[str, int]]:
    """The (kind, Shopify id) pairs a bad line of `phase` names; empty when it names none."""
    kinds = _KINDS[phase]
    found = []
    for match in _GID.finditer(line):
        kind = kinds.get((match[1], match[2]))
        number = int(match[3])
        if kind is not None and number <= _MAX_ID:
            found.append((kind, number))
    return found


# The session a protected id belongs to when a phase is staged split over two (products' and
# variants'): the one that merges and sweeps its table.
def variants_side(kind: str) -> bool:
    return kind in ("V", "MV")
