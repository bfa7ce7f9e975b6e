"""Decoded lines -> staging rows. One function per phase, each returning the row for the phase's
staging table or raising `BadLine` with the reason the quarantine keeps."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec

from neanelu.ingest.bulk_lines import (
    BadLine,
    CoreLine,
    InventoryItem,
    InventoryLevel,
    InventoryLine,
    Metafield,
    MetafieldsLine,
    Product,
    ProductVariant,
    gid_parser,
    owner_of,
)
from neanelu.ingest.queries import Phase

Row = tuple[Any, ...]
# None: a line that is valid but stores nothing (parent lines of the metafields and inventory
# queries exist only so that their children can name them in __parentId).
RowBuilder = Callable[[bytes, int, int], Row | None]

COLUMNS: dict[Phase, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    Phase.CORE: (
        "stg_core",
        (
            "kind",
            "line_no",
            "byte_offset",
            "shopify_id",
            "parent_id",
            "handle",
            "title",
            "vendor",
            "product_type",
            "status",
            "tags",
            "description",
            "sku",
            "price",
            "compare_at_price",
            "barcode",
            "position",
            "inventory_quantity",
            "inventory_item_id",
            "selected_options",
            "created",
            "updated",
        ),
        (
            "text",
            "int8",
            "int8",
            "int8",
            "int8",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "text",
            "int4",
            "int4",
            "int8",
            "text",
            "timestamptz",
            "timestamptz",
        ),
    ),
    Phase.METAFIELDS: (
        "stg_meta",
        ("line_no", "byte_offset", "owner_kind", "owner_id", "entry", "source"),
        ("int8", "int8", "text", "int8", "text", "int2"),
    ),
    Phase.INVENTORY: (
        "stg_inv",
        ("line_no", "byte_offset", "shopify_id", "item_id", "location_id", "available", "updated"),
        ("int8", "int8", "int8", "int8", "int8", "int4", "timestamptz"),
    ),
}

_INT32 = 1 << 31
# PostgreSQL text cannot hold NUL; one such value would abort the whole COPY, so its line is
# quarantined instead (JSON can only carry it escaped). `NUL_ESCAPE in block` is the cheap test:
# staging runs it once per downloaded block, and `refuse_nul` only on the lines of a block that
# holds it (per line, the test cost a tenth of the decoding).
NUL_ESCAPE = b"\\u0000"
_NUL_REASON = "contains a NUL character (\\u0000), which PostgreSQL text cannot store"


def text_array(items: list[str]) -> str:
    """A PostgreSQL array literal of text items, cast to text[] during the merge (psycopg's binary
    array dumping cost 2 us a row). Items are quoted; quotes and backslashes in them escaped."""
    if not items:
        return "{}"
    joined = '","'.join(items)
    if "\\" in joined or joined.count('"') != 2 * (len(items) - 1):
        joined = '","'.join(t.replace("\\", "\\\\").replace('"', '\\"') for t in items)
    return '{"' + joined + '"}'


def money(value: str | None, field: str) -> str | None:
    """A Decimal string that numeric(20, 4) holds, passed on as text for PostgreSQL to cast in
    the merge: a Decimal object costs more to decode and to COPY than the rest of the row, and
    msgspec's pattern check more than this. Anything else is a bad line, not a failed batch."""
    if value is None:
        return None
    whole, dot, frac = value.removeprefix("-").partition(".")
    if (
        not 0 < len(whole) <= 15
        or len(frac) > 20
        or (dot and not frac)
        or not (whole + frac).isdigit()
        or not value.isascii()
    ):
        raise BadLine(f"{field} is not a decimal number numeric(20, 4) can hold: {value[:40]!r}")
    return value


def _int32(value: int | None, field: str) -> int | None:
    if value is not None and not -_INT32 <= value < _INT32:
        raise BadLine(f"{field} out of range: {value}")
    return value


def _holds_nul(line: bytes) -> bool:
    """The cheap byte test also matches an escaped backslash before `u0000`; decode to be sure.
    A line that does not decode is refused here: the typed decode skips fields the project does
    not store without checking them, so it could pass a line this walk cannot vouch for."""
    stack: list[Any] = [msgspec.json.decode(line)]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


def refuse_nul(line: bytes) -> None:
    """Raise `BadLine` if the line holds a NUL character in any string (see `NUL_ESCAPE`)."""
    if NUL_ESCAPE in line and _holds_nul(line):
        raise BadLine(_NUL_REASON)


# Why a line is refused, for the quarantine: computed only for refused lines.
_SURROGATE = re.compile(rb"\\[uU][dD][89a-fA-F][0-9a-fA-F]{2}")


def refusal(line: bytes, exc: BaseException) -> str:
    """The reason a line that raised `exc` while it was decoded or built is refused, naming the
    byte where it goes wrong when that is known."""
    if isinstance(exc, BadLine):
        return str(exc)
    if isinstance(exc, UnicodeDecodeError):
        try:
            line.decode()
        except UnicodeDecodeError as bad:
            at = bad.start
            return f"invalid UTF-8 at byte {at} of the line ({line[at : at + 1]!r})"
    if isinstance(exc, RecursionError):
        return "nested too deeply to decode"
    if isinstance(exc, msgspec.DecodeError) and not isinstance(exc, msgspec.ValidationError):
        if b"\x00" in line:
            return f"raw NUL byte at byte {line.index(0)} of the line (not valid JSON)"
        lone = _lone_surrogate(line)
        if lone is not None:
            return (
                f"lone UTF-16 surrogate escape {line[lone : lone + 6].decode()} at byte {lone}"
                " of the line, which PostgreSQL text cannot store"
            )
    return f"invalid line: {exc}"


def _lone_surrogate(line: bytes) -> int | None:
    """Where the first `\\uD800`-`\\uDFFF` escape without its pair starts (an escaped backslash
    before it makes it plain text, not an escape)."""
    pos = 0
    while (match := _SURROGATE.search(line, pos)) is not None:
        start, pos = match.start(), match.end()
        before = start
        while before > 0 and line[before - 1] == 0x5C:  # backslash
            before -= 1
        if (start - before) % 2:
            continue  # `\\uD800` in JSON: an escaped backslash, then text
        if line[start + 2] in b"89abAB":
            pair = _SURROGATE.match(line, pos)
            if pair is not None and line[pos + 2] not in b"89abAB":
                pos = pair.end()
                continue
        return start
    return None


def core_builder() -> RowBuilder:
    decode = msgspec.json.Decoder(CoreLine).decode
    product_id, variant_id = gid_parser("Product"), gid_parser("ProductVariant")
    item_id = gid_parser("InventoryItem")

    def build(line: bytes, line_no: int, offset: int) -> Row | None:
        rec = decode(line)
        if type(rec) is Product:
            return (
                "P",
                line_no,
                offset,
                product_id(rec.id),
                None,
                rec.handle,
                rec.title,
                rec.vendor,
                rec.product_type,
                rec.status,
                text_array(rec.tags),
                rec.description_html,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                rec.created_at,
                rec.updated_at,
            )
        assert isinstance(rec, ProductVariant)
        if rec.parent_id is None:
            raise BadLine("variant without __parentId")
        item = rec.inventory_item
        return (
            "V",
            line_no,
            offset,
            variant_id(rec.id),
            product_id(rec.parent_id),
            None,
            rec.title,
            None,
            None,
            None,
            None,
            None,
            rec.sku,
            money(rec.price, "price"),
            money(rec.compare_at_price, "compareAtPrice"),
            rec.barcode,
            _int32(rec.position, "position"),
            _int32(rec.inventory_quantity, "inventoryQuantity"),
            item_id(item.id) if item is not None else None,
            bytes(rec.selected_options).decode(),
            rec.created_at,
            rec.updated_at,
        )

    return build


def metafields_builder(keep: Callable[[str], bool] | None = None, source: int = 0) -> RowBuilder:
    """Metafield lines -> one JSON member each; with `keep`, only metafields whose namespace it
    accepts (an owner app's file also holds everything the shop shares with every app). `source`
    numbers the file among the run's metafield files (see `METAFIELD_FILES`), so that a row set
    aside later (an orphan) is quarantined under its own file's line number."""
    decode = msgspec.json.Decoder(MetafieldsLine).decode
    encode = msgspec.json.Encoder().encode
    metafield_id = gid_parser("Metafield")

    def build(line: bytes, line_no: int, offset: int) -> Row | None:
        rec = decode(line)
        if type(rec) is not Metafield or (keep is not None and not keep(rec.namespace)):
            return None
        kind, owner = owner_of(rec.parent_id)
        metafield_id(rec.id)  # validates the id; the owner's object keys by name
        entry = b"".join(
            (
                encode(f"{rec.namespace}.{rec.key}"),
                b':{"type":',
                encode(rec.type),
                b',"value":',
                encode(rec.value),
                b"}",
            )
        )
        return (line_no, offset, kind, owner, entry.decode(), source)

    return build


def inventory_builder() -> RowBuilder:
    decode = msgspec.json.Decoder(InventoryLine).decode
    level_id, item_id = gid_parser("InventoryLevel"), gid_parser("InventoryItem")
    location_id = gid_parser("Location")

    def build(line: bytes, line_no: int, offset: int) -> Row | None:
        rec = decode(line)
        if type(rec) is InventoryItem:
            return None
        assert isinstance(rec, InventoryLevel)
        available = None
        for quantity in rec.quantities:
            if quantity.name == "available":
                available = quantity.quantity
                break
        return (
            line_no,
            offset,
            level_id(rec.id),
            item_id(rec.parent_id),
            location_id(rec.location.id),
            _int32(available, "available"),
            rec.updated_at,
        )

    return build


# The run's own metafield files, by `source`; owner apps' files are numbered after them.
METAFIELD_FILES = (Phase.METAFIELDS.value, Phase.VARIANT_METAFIELDS.value)

BUILDERS: dict[Phase, Callable[[], RowBuilder]] = {
    Phase.CORE: core_builder,
    Phase.METAFIELDS: lambda: metafields_builder(source=0),
    Phase.VARIANT_METAFIELDS: lambda: metafields_builder(source=1),
    Phase.INVENTORY: inventory_builder,
}
COLUMNS[Phase.VARIANT_METAFIELDS] = COLUMNS[Phase.METAFIELDS]
