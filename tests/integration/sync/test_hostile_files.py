"""Full syncs fed hostile bulk files: the emulator's own files with lines broken in place, served
by its control API instead of what the bulk run wrote. A bad line is quarantined (with its line
number, byte offset and reason), the sync finishes, and nothing it names is deleted."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

import pytest

from neanelu.db.pool import tenant_scope
from neanelu.ingest.queries import Phase, bulk_query
from neanelu.shopify.bulk import BulkPolling, judge, start_bulk_query, wait_for_operation
from neanelu.sync import repository as runs
from tests.integration.sync.helpers import SyncHarness

# Substrings that pick each phase's query (ingest/queries.py) for the emulator's served files.
QUERY_OF = {
    Phase.CORE: "descriptionHtml",
    Phase.METAFIELDS: "products { edges { node { __typename id metafields",
    Phase.VARIANT_METAFIELDS: "productVariants",
    Phase.INVENTORY: "inventoryItems",
}


@dataclass
class BulkFile:
    lines: list[bytes]

    def index_of(self, *needles: bytes) -> int:
        return next(i for i, line in enumerate(self.lines) if all(n in line for n in needles))

    def offset_of(self, index: int) -> int:
        return sum(len(line) + 1 for line in self.lines[:index])

    def content(self, *, final_newline: bool = True) -> bytes:
        body = b"\n".join(self.lines)
        return body + b"\n" if final_newline else body


async def real_file(harness: SyncHarness, phase: Phase) -> BulkFile:
    """The file the emulator writes for the phase's query, fetched as the sync would."""
    client = await harness.deps.shops.admin_client(harness.shop_id)
    operation = await wait_for_operation(
        client,
        await start_bulk_query(client, bulk_query(phase)),
        BulkPolling(first_poll=0.05),
    )
    result = judge(operation)
    assert result.url is not None
    response = await harness.http.get(result.url)
    response.raise_for_status()
    return BulkFile([line for line in response.content.split(b"\n") if line])


async def serve(harness: SyncHarness, phase: Phase, content: bytes) -> None:
    await harness.control(
        "POST",
        "/bulk/served-files",
        json={
            "query_contains": QUERY_OF[phase],
            "content_base64": base64.b64encode(content).decode(),
        },
    )


async def quarantined(harness: SyncHarness, run_id: UUID) -> list[tuple[str, int, int, str]]:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        cur = await conn.execute(
            "SELECT phase, line_no, byte_offset, reason FROM sync_quarantine WHERE run_id = %s"
            " ORDER BY phase, line_no",
            (run_id,),
        )
        return [(str(r[0]), int(r[1]), int(r[2]), str(r[3])) for r in await cur.fetchall()]


async def run_row(harness: SyncHarness, run_id: UUID) -> runs.SyncRun:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        run = await runs.get_run(conn, run_id)
    assert run is not None
    return run


async def assert_matches_shop(harness: SyncHarness) -> None:
    expected = await harness.expected_counts()
    stored = await harness.stored()
    for key, value in stored.items():
        assert value == expected[key], key


# The emulator is shared by the module: each test deletes a product of its own.
def gid_bytes(kind: str, number: int) -> bytes:
    return f'"id":"gid://shopify/{kind}/{number}"'.encode()


PRODUCT = 8_000_000_000_007
TITLE = b'"title":"'

# Each way to break one product line, and the reason its quarantine row must give.
Breakage = Callable[[bytes], bytes]
BREAKAGES: dict[str, tuple[Breakage, str]] = {
    "invalid_utf8": (lambda line: line.replace(TITLE, TITLE + b"ok \xff", 1), "invalid UTF-8"),
    "lone_surrogate": (
        lambda line: line.replace(TITLE, TITLE + b"\\ud800", 1),
        "lone UTF-16 surrogate escape \\ud800",
    ),
    "raw_nul": (lambda line: line.replace(TITLE, TITLE + b"\x00", 1), "raw NUL byte"),
    "escaped_nul": (lambda line: line.replace(TITLE, TITLE + b"\\u0000", 1), "NUL character"),
    # Escaped NUL in a line whose other bytes are not UTF-8 either.
    "escaped_nul_and_bad_bytes": (
        lambda line: line.replace(TITLE, TITLE + b"\\u0000 \xfe", 1),
        "invalid UTF-8",
    ),
    "wrong_type": (
        lambda line: line.replace(b'"tags":[', b'"tags":[7,', 1),
        "Expected `str`, got `int`",
    ),
    "missing_field": (
        lambda line: line.replace(b'"__typename":"Product",', b"", 1),
        "missing required field `__typename`",
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
async def test_a_bad_core_line_is_quarantined_and_the_next_sync_starts_cleanly(
    harness: SyncHarness, breakage: str
) -> None:
    core = await real_file(harness, Phase.CORE)
    index = core.index_of(b'"__typename":"Product"', gid_bytes("Product", PRODUCT))
    broken, reason = BREAKAGES[breakage]
    core.lines[index] = broken(core.lines[index])
    await serve(harness, Phase.CORE, core.content())

    first = await harness.full_sync()
    assert first.status == "completed"
    assert (await run_row(harness, first.run_id)).status == "completed"
    bad = [q for q in await quarantined(harness, first.run_id) if not q[3].startswith("orphan")]
    assert [(p, n, o) for p, n, o, _ in bad] == [("core", index + 1, core.offset_of(index))]
    assert reason in bad[0][3]
    assert first.bad_lines == 1

    second = await harness.full_sync()
    assert second.status == "completed"
    assert second.run_id != first.run_id
    assert await quarantined(harness, second.run_id) == []
    await assert_matches_shop(harness)


async def test_a_file_of_the_promised_size_ending_in_a_cut_off_line_syncs(
    harness: SyncHarness,
) -> None:
    core = await real_file(harness, Phase.CORE)
    index = core.index_of(b'"__typename":"Product"', gid_bytes("Product", PRODUCT))
    # That product's line last, cut after its id, with no newline after it: the file ends there.
    line = core.lines.pop(index)
    core.lines.append(line[: line.index(b'"handle"') + 12])
    last = len(core.lines) - 1
    await serve(harness, Phase.CORE, core.content(final_newline=False))

    first = await harness.full_sync()
    assert first.status == "completed"
    bad = [q for q in await quarantined(harness, first.run_id) if not q[3].startswith("orphan")]
    assert [(p, n, o) for p, n, o, _ in bad] == [("core", last + 1, core.offset_of(last))]
    assert bad[0][3].startswith("last line:")

    second = await harness.full_sync()
    assert await quarantined(harness, second.run_id) == []
    await assert_matches_shop(harness)


async def _stored_row(harness: SyncHarness, table: str, shopify_id: int) -> tuple[object, ...]:
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        cur = await conn.execute(
            f"SELECT title, metafields, deleted_at IS NULL, shopify_updated_at FROM {table}"
            " WHERE shopify_id = %s",
            (shopify_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_stored_rows_whose_lines_are_bad_are_kept_as_stored_and_reported(
    harness: SyncHarness,
) -> None:
    # 1: a bad line in the first sync; 2: a clean sync stores everything.
    core = await real_file(harness, Phase.CORE)
    index = core.index_of(gid_bytes("Product", PRODUCT))
    core.lines[index] = core.lines[index].replace(TITLE, TITLE + b"\xff", 1)
    await serve(harness, Phase.CORE, core.content())
    assert (await harness.full_sync()).status == "completed"
    await harness.full_sync()
    await assert_matches_shop(harness)

    # 3: a stored product's line and a stored variant's line (of another product) are bad, and
    # a third product is really gone from Shopify.
    gone = "gid://shopify/Product/8000000000011"
    await harness.control("DELETE", f"/products/{gone}")
    core = await real_file(harness, Phase.CORE)
    assert not any(gone.encode() in line for line in core.lines)
    product_at = core.index_of(b'"__typename":"Product"', gid_bytes("Product", PRODUCT))
    variant_at = core.index_of(b'"__typename":"ProductVariant"', b"/Product/8000000000009")
    variant = int(core.lines[variant_at].split(b"ProductVariant/", 1)[1].split(b'"', 1)[0])
    product_before = await _stored_row(harness, "products", PRODUCT)
    variant_before = await _stored_row(harness, "variants", variant)
    core.lines[product_at] = core.lines[product_at].replace(TITLE, TITLE + b"\xff", 1)
    core.lines[variant_at] = core.lines[variant_at].replace(TITLE, TITLE + b"\\udfff", 1)
    await serve(harness, Phase.CORE, core.content())

    third = await harness.full_sync()
    assert third.status == "completed"
    assert await _stored_row(harness, "products", PRODUCT) == product_before
    assert await _stored_row(harness, "variants", variant) == variant_before
    assert product_before[2] is True
    assert variant_before[2] is True
    assert third.kept == {"products": [PRODUCT], "variants": [variant]}
    assert third.unswept == []
    run = await run_row(harness, third.run_id)
    assert run.counts["kept_as_stored"] == {"products": 1, "variants": 1}
    assert run.counts["kept_as_stored_ids"] == {"products": [PRODUCT], "variants": [variant]}
    lines = [(p, n) for p, n, _, _ in await quarantined(harness, third.run_id)]
    assert lines == [("core", product_at + 1), ("core", variant_at + 1)]
    # The product Shopify no longer has was still marked deleted (its absence is evidence).
    assert (await _stored_row(harness, "products", 8_000_000_000_011))[2] is False
    assert third.marked_deleted >= 1


async def test_a_bad_line_naming_no_id_skips_the_sweep_and_says_so(harness: SyncHarness) -> None:
    await harness.full_sync()
    gone = "gid://shopify/Product/8000000000013"
    await harness.control("DELETE", f"/products/{gone}")
    core = await real_file(harness, Phase.CORE)
    index = core.index_of(b'"__typename":"Product"', gid_bytes("Product", PRODUCT))
    # The id itself is unreadable: nothing tells which product this was.
    core.lines[index] = core.lines[index].replace(b"/Product/8000", b"/Product/\xff8000", 1)
    await serve(harness, Phase.CORE, core.content())

    summary = await harness.full_sync()
    assert summary.status == "completed"
    assert summary.unswept == ["products", "variants"]
    assert summary.marked_deleted == 0
    assert (await _stored_row(harness, "products", 8_000_000_000_013))[2] is True
    assert (await _stored_row(harness, "products", PRODUCT))[2] is True
    assert (await run_row(harness, summary.run_id)).counts["unswept"] == ["products", "variants"]
    # The next clean sync proves the product gone.
    await harness.full_sync()
    assert (await _stored_row(harness, "products", 8_000_000_000_013))[2] is False


async def test_bad_metafield_and_inventory_lines_keep_what_is_stored(
    harness: SyncHarness,
) -> None:
    await harness.full_sync()
    metafields = await real_file(harness, Phase.METAFIELDS)
    at = metafields.index_of(b'"__typename":"Metafield"', b'"__parentId":"gid://shopify/Product/')
    owner = int(metafields.lines[at].rsplit(b"/Product/", 1)[1].split(b'"', 1)[0])
    stored_metafields = (await _stored_row(harness, "products", owner))[1]
    assert isinstance(stored_metafields, dict)
    assert stored_metafields
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        cur = await conn.execute(
            "SELECT shopify_id, inventory_item_id, location_id, available FROM inventory_levels"
            " ORDER BY shopify_id LIMIT 1"
        )
        level = await cur.fetchone()
    assert level is not None

    metafields.lines[at] = metafields.lines[at].replace(b'"value":"', b'"value":"\xc3', 1)
    await serve(harness, Phase.METAFIELDS, metafields.content())
    inventory = await real_file(harness, Phase.INVENTORY)
    at = inventory.index_of(f"InventoryLevel/{level[0]}?".encode())
    inventory.lines[at] = inventory.lines[at].replace(b'"quantity":', b'"quantity":"x', 1)
    await serve(harness, Phase.INVENTORY, inventory.content())

    summary = await harness.full_sync()
    assert summary.status == "completed"
    assert summary.bad_lines == 2
    # The product's metafield whose line was bad keeps its stored value; nothing was deleted.
    assert (await _stored_row(harness, "products", owner))[1] == stored_metafields
    async with tenant_scope(harness.pool, harness.shop_id) as conn:
        cur = await conn.execute(
            "SELECT shopify_id, inventory_item_id, location_id, available FROM inventory_levels"
            " WHERE shopify_id = %s",
            (level[0],),
        )
        assert await cur.fetchone() == level
    assert summary.kept == {"product_metafields": [owner], "inventory_levels": [level[0]]}
    await assert_matches_shop(harness)


async def test_orphan_product_and_variant_metafields_are_quarantined(
    harness: SyncHarness,
) -> None:
    """A product (and a variant) created between the core and the metafields snapshots: their
    metafields have no owner in the core file."""
    product_mf = await real_file(harness, Phase.METAFIELDS)
    variant_mf = await real_file(harness, Phase.VARIANT_METAFIELDS)
    new_product, new_variant = 8_000_000_009_999, 40_000_000_099_999
    product_mf.lines += [
        b'{"__typename":"Product","id":"gid://shopify/Product/%d"}' % new_product,
        b'{"__typename":"Metafield","id":"gid://shopify/Metafield/31","namespace":"custom",'
        b'"key":"late","type":"single_line_text_field","value":"v",'
        b'"updatedAt":"2026-01-02T00:00:00Z","__parentId":"gid://shopify/Product/%d"}'
        % new_product,
    ]
    variant_mf.lines.insert(
        0,
        b'{"__typename":"Metafield","id":"gid://shopify/Metafield/32","namespace":"custom",'
        b'"key":"late","type":"single_line_text_field","value":"w",'
        b'"updatedAt":"2026-01-02T00:00:00Z","__parentId":"gid://shopify/ProductVariant/%d"}'
        % new_variant,
    )
    await serve(harness, Phase.METAFIELDS, product_mf.content())
    await serve(harness, Phase.VARIANT_METAFIELDS, variant_mf.content())

    summary = await harness.full_sync()
    assert summary.status == "completed"
    assert summary.orphan_metafields == 2
    orphans = await quarantined(harness, summary.run_id)
    last = len(product_mf.lines) - 1
    assert [(p, n, o) for p, n, o, _ in orphans] == [
        ("metafields", last + 1, product_mf.offset_of(last)),
        ("variant_metafields", 1, 0),
    ]
    assert f"owner product {new_product}" in orphans[0][3]
    assert f"owner variant {new_variant}" in orphans[1][3]
    counts = (await run_row(harness, summary.run_id)).counts
    assert counts["orphan_metafields"] == 2
    await assert_matches_shop(harness)
