"""A property of the ingest path, on generated bulk files through the real staging and merges.

Several full syncs of one shop, each fed generated files (core, product and variant metafields,
inventory): lines in any order, duplicates older and newer, orphan variants and metafields, bad
lines of every kind (some still naming their ids, some not), objects deleted between runs. After
each run the shop's tables must equal a reference model: the files' valid lines applied
newer-wins over what was stored, sweeps deleting only what the files prove absent; and the
quarantine must hold exactly every bad line and every orphan, nothing else.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn, PoolSizes, create_pool, tenant_scope
from neanelu.db.sql_files import load_sql
from neanelu.ingest import merge
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.stage import PhaseStats, StageOptions, stage_phase
from neanelu.sync import repository as runs
from neanelu.sync.attempt import CatalogStaged
from tests.databases import TestDatabase
from tests.factories import create_shop

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
PRODUCTS = range(1, 6)
VARIANTS_PER_PRODUCT = 2
LOCATIONS = (1, 2)
KEYS = ("k0", "k1")
MF_TYPE = "single_line_text_field"
# Owners that never exist in any core file: their children are orphans.
GHOST_PRODUCT, GHOST_VARIANT = 900, 9000

# Bad-line kinds. The first ones leave the line's ids readable (the line still names them);
# `destroy_ids` and `cut_start` leave nothing to read. `MARK` stands in a stored string field.
NAMING = ("utf8", "surrogate", "nul_raw", "nul_escaped", "wrong_type", "no_typename", "cut_end")
BLIND = ("destroy_ids", "cut_start")
MARK = b'"MARK"'


def variant_ids(product: int) -> list[int]:
    return [product * 10 + j for j in range(VARIANTS_PER_PRODUCT)]


def gid(kind: str, number: int) -> str:
    return f"gid://shopify/{kind}/{number}"


def at(seconds: int) -> str:
    return (EPOCH + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


@dataclass
class Line:
    """One generated line: the object it carries (None for a parent line that stores nothing),
    its bytes, and when bad what it names (kind, id) as ingest/evidence.py must find."""

    data: bytes
    obj: dict[str, Any] | None = None
    bad: bool = False
    names: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Row:
    fields: tuple[Any, ...]
    updated: int
    metafields: dict[str, Any] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class Model:
    products: dict[int, Row] = field(default_factory=dict)
    variants: dict[int, Row] = field(default_factory=dict)
    # (item, location) -> ((level id, available), updated)
    levels: dict[tuple[int, int], tuple[tuple[int, int], int]] = field(default_factory=dict)


def encode(obj: dict[str, Any]) -> bytes:
    return msgspec.json.encode(obj)


def corrupt(data: bytes, how: str, ids: list[bytes]) -> bytes:
    """`data` (holding MARK where a stored string goes) broken the way `how` says."""
    if how == "cut_end":
        return data.replace(MARK, b'"x"')[:-1]  # the closing brace gone, every id intact
    if how == "cut_start":
        return data[:12]
    if how == "no_typename":
        return data.replace(MARK, b'"x"').replace(b'"__typename":', b'"__typenam":', 1)
    if how == "destroy_ids":
        for number in ids:
            data = data.replace(b"/" + number, b"/\xff" + number)
        return data.replace(MARK, b'"x"')
    into = {
        "utf8": b'"a\xffb"',
        "surrogate": b'"a\\ud800b"',
        "nul_raw": b'"a\x00b"',
        "nul_escaped": b'"a\\u0000b"',
        "wrong_type": b"7",
    }[how]
    return data.replace(MARK, into)


class Files:
    """The four files of one run, built line by line."""

    def __init__(self, draw: Any, stamp: int) -> None:
        self.draw = draw
        self.stamp = stamp  # updatedAt values of this run lie above it
        self.lines: dict[Phase, list[Line]] = {phase: [] for phase in Phase}
        # Files where bad lines may name nothing (which makes the whole file's kind unprovable,
        # hiding what lines that do name their ids protect): one in four.
        self.blind = {phase: draw(st.integers(0, 3)) == 0 for phase in Phase}

    def add(
        self,
        phase: Phase,
        obj: dict[str, Any],
        mark: str | None,
        names: list[tuple[str, int]],
        stores: bool,
        bad_kinds: tuple[str, ...] = NAMING + BLIND,
    ) -> None:
        """One object's line; maybe bad (then `mark` names the stored string field to break)."""
        if mark is not None and self.draw(st.integers(0, 9)) == 0:
            kinds = bad_kinds if mark else ("no_typename", "cut_end", *BLIND)
            if not self.blind[phase]:
                kinds = tuple(k for k in kinds if k in NAMING)
            how = self.draw(st.sampled_from(kinds))
            broken = {**obj, mark: "MARK"} if mark else obj
            ids = [str(n).encode() for _, n in names]
            data = corrupt(encode(broken), how, ids)
            self.lines[phase].append(Line(data, None, True, names if how in NAMING else []))
            return
        self.lines[phase].append(Line(encode(obj), obj if stores else None))

    def render(self, phase: Phase) -> tuple[bytes, list[Line]]:
        lines = self.draw(st.permutations(self.lines[phase]))
        body = b"\n".join(line.data for line in lines)
        if lines and self.draw(st.booleans()):
            body += b"\n"
        return body, list(lines)


def build_run(draw: Any, run: int, alive: set[int]) -> Files:
    """What Shopify holds in this run (`alive` products, each with its variants), rendered with
    duplicates, orphans and bad lines."""
    files = Files(draw, run * 1000)
    version = run * 1000 + 100

    def stamp() -> int:
        nonlocal version
        version += int(draw(st.integers(1, 3)))
        return version

    for product in sorted(alive):
        versions = draw(st.integers(1, 2))  # a second line: an older or newer duplicate
        for _ in range(versions):
            obj = {
                "__typename": "Product",
                "id": gid("Product", product),
                "title": f"p{product}-{draw(st.integers(0, 2))}",
                "updatedAt": at(stamp()),
            }
            files.add(Phase.CORE, obj, "title", [("P", product)], True)
        files.add(
            Phase.METAFIELDS,
            {"__typename": "Product", "id": gid("Product", product), "title": "t"},
            "title",
            [("MP", product)],
            False,
        )
        for key in draw(st.lists(st.sampled_from(KEYS), max_size=3)):
            metafield(files, "Product", product, key, draw)
        for variant in variant_ids(product):
            if not draw(st.integers(0, 4)):
                continue  # this variant does not exist in this run
            for _ in range(draw(st.integers(1, 2))):
                obj = {
                    "__typename": "ProductVariant",
                    "id": gid("ProductVariant", variant),
                    "sku": f"s{variant}-{draw(st.integers(0, 2))}",
                    "updatedAt": at(stamp()),
                    "__parentId": gid("Product", product),
                }
                files.add(Phase.CORE, obj, "sku", [("V", variant)], True)
            files.add(
                Phase.VARIANT_METAFIELDS,
                {"__typename": "ProductVariant", "id": gid("ProductVariant", variant), "sku": "s"},
                "sku",
                [("MV", variant)],
                False,
            )
            for key in draw(st.lists(st.sampled_from(KEYS), max_size=2)):
                metafield(files, "ProductVariant", variant, key, draw)
            inventory(files, variant, stamp, draw)
    # Orphans: a variant of a product in no file, metafields of owners in no core file.
    if draw(st.booleans()):
        ghost = GHOST_PRODUCT + run
        obj = {
            "__typename": "ProductVariant",
            "id": gid("ProductVariant", GHOST_VARIANT + run),
            "sku": "orphan",
            "updatedAt": at(stamp()),
            "__parentId": gid("Product", ghost),
        }
        files.add(Phase.CORE, obj, "sku", [("V", GHOST_VARIANT + run)], True)
        metafield(files, "ProductVariant", GHOST_VARIANT + run, "k0", draw)
    if draw(st.booleans()):
        metafield(files, "Product", GHOST_PRODUCT + run, "k1", draw)
    return files


def metafield(files: Files, owner_type: str, owner: int, key: str, draw: Any) -> None:
    phase = Phase.METAFIELDS if owner_type == "Product" else Phase.VARIANT_METAFIELDS
    obj = {
        "__typename": "Metafield",
        "id": gid("Metafield", draw(st.integers(1, 10**6))),
        "namespace": "custom",
        "key": key,
        "type": MF_TYPE,
        "value": f"v{draw(st.integers(0, 3))}",
        "__parentId": gid(owner_type, owner),
    }
    kind = "MP" if owner_type == "Product" else "MV"
    files.add(phase, obj, "value", [(kind, owner)], True)


def inventory(files: Files, variant: int, stamp: Any, draw: Any) -> None:
    item = 50_000 + variant
    files.add(
        Phase.INVENTORY,
        {"__typename": "InventoryItem", "id": gid("InventoryItem", item)},
        "",
        [("I", item)],
        False,
    )
    for location in LOCATIONS:
        if not draw(st.integers(0, 3)):
            continue
        # Shopify's form: the level's number is its location's, shared by every item there.
        level = location
        for _ in range(draw(st.integers(1, 2))):
            obj = {
                "__typename": "InventoryLevel",
                "id": f"gid://shopify/InventoryLevel/{level}?inventory_item_id={item}",
                "location": {"id": gid("Location", location)},
                "quantities": [{"name": "available", "quantity": draw(st.integers(-5, 50))}],
                "updatedAt": at(stamp()),
                "__parentId": gid("InventoryItem", item),
            }
            files.add(Phase.INVENTORY, obj, "updatedAt", [("L", level), ("I", item)], True)


def seconds(iso: str) -> int:
    return int((datetime.fromisoformat(iso) - EPOCH).total_seconds())


def newest(objs: list[dict[str, Any]], key: Any) -> dict[Any, dict[str, Any]]:
    """Per key, the line with the latest updatedAt (a file's lines of one object never tie)."""
    out: dict[Any, dict[str, Any]] = {}
    for obj in objs:
        k = key(obj)
        if k not in out or seconds(obj["updatedAt"]) > seconds(out[k]["updatedAt"]):
            out[k] = obj
    return out


def number(gid_text: str) -> int:
    return int(gid_text.rsplit("/", 1)[1].split("?", 1)[0])


@dataclass
class Evidence:
    """What a run's bad lines say: where they are, the ids they name, the files where one
    named nothing."""

    quarantine: set[tuple[str, int]]
    named: set[tuple[str, int]] = field(default_factory=set)
    blind: set[Phase] = field(default_factory=set)


def evidence(files: dict[Phase, list[Line]]) -> Evidence:
    found = Evidence(
        {(p.value, i + 1) for p, ls in files.items() for i, ln in enumerate(ls) if ln.bad}
    )
    for phase, lines in files.items():
        for ln in (ln for ln in lines if ln.bad):
            found.named.update(ln.names)
            if not ln.names:
                found.blind.add(phase)
    return found


def folded(
    lines: list[Line], phase: Phase, owners: dict[int, Any], ev: Evidence
) -> dict[int, dict[str, Any]]:
    """Each owner's metafields, the last line of a key winning; orphans into the quarantine."""
    out: dict[int, dict[str, Any]] = {}
    kind = "P" if phase is Phase.METAFIELDS else "V"
    for i, ln in enumerate(lines):
        if ln.obj is None:
            continue
        owner = number(ln.obj["__parentId"])
        if owner not in owners and (kind, owner) not in ev.named:
            ev.quarantine.add((phase.value, i + 1))
        entry = {"type": ln.obj["type"], "value": ln.obj["value"]}
        out.setdefault(owner, {})[f"custom.{ln.obj['key']}"] = entry
    return out


def apply(
    table: dict[int, Row],
    incoming: dict[int, dict[str, Any]],
    fields: Any,
    metafields: dict[int, dict[str, Any]],
    partial: Any,
) -> None:
    """Newer-wins (docs/newer-wins.md): a line at least as new as the stored row replaces it; its
    metafields replace the stored ones unless `partial(key)` (then they are merged over them).
    A row an earlier run swept stays deleted: the sweep recorded its deletion when that sync
    ended, later than every generated updatedAt; only its metafields are the file's."""
    for key, obj in incoming.items():
        stored, updated = table.get(key), seconds(obj["updatedAt"])
        if stored is not None and updated < stored.updated:
            continue
        mf = metafields.get(key, {})
        if stored is not None and partial(key):
            mf = {**stored.metafields, **mf}
        if stored is not None and stored.deleted:
            table[key] = replace(stored, metafields=mf)
            continue
        table[key] = Row(fields(obj), updated, mf)


def sweep(table: dict[int, Row], present: dict[int, Any], kind: str, ev: Evidence) -> None:
    for key, row in table.items():
        if not row.deleted and key not in present and (kind, key) not in ev.named:
            table[key] = replace(row, deleted=True)


def expect_catalog(model: Model, files: dict[Phase, list[Line]], ev: Evidence) -> Model:
    core = [(i, ln.obj) for i, ln in enumerate(files[Phase.CORE]) if ln.obj is not None]
    products = newest(
        [o for _, o in core if o["__typename"] == "Product"], lambda o: number(o["id"])
    )
    variant_lines = [(i, o) for i, o in core if o["__typename"] == "ProductVariant"]
    orphan = {
        number(o["id"])
        for _, o in variant_lines
        if number(o["__parentId"]) not in products and number(o["__parentId"]) not in model.products
    }
    ev.quarantine |= {("core", i + 1) for i, o in variant_lines if number(o["id"]) in orphan}
    variants = newest(
        [o for _, o in variant_lines if number(o["id"]) not in orphan], lambda o: number(o["id"])
    )
    product_mf = folded(files[Phase.METAFIELDS], Phase.METAFIELDS, products, ev)
    variant_mf = folded(files[Phase.VARIANT_METAFIELDS], Phase.VARIANT_METAFIELDS, variants, ev)
    after = Model(dict(model.products), dict(model.variants), dict(model.levels))
    apply(
        after.products,
        products,
        lambda o: (o["title"],),
        product_mf,
        lambda key: Phase.METAFIELDS in ev.blind or ("MP", key) in ev.named,
    )
    apply(
        after.variants,
        variants,
        lambda o: (o["sku"], number(o["__parentId"])),
        variant_mf,
        lambda key: Phase.VARIANT_METAFIELDS in ev.blind or ("MV", key) in ev.named,
    )
    first_load = not model.products and not model.variants
    if not first_load and Phase.CORE not in ev.blind:
        sweep(after.products, products, "P", ev)
        sweep(after.variants, variants, "V", ev)
    return after


def expect_levels(model: Model, lines: list[Line], ev: Evidence) -> dict[Any, Any]:
    levels = newest(
        [ln.obj for ln in lines if ln.obj is not None],
        lambda o: (number(o["__parentId"]), number(o["location"]["id"])),
    )
    after = dict(model.levels)
    for key, obj in levels.items():
        stored, updated = after.get(key), seconds(obj["updatedAt"])
        if stored is None or updated >= stored[1]:
            after[key] = ((number(obj["id"]), obj["quantities"][0]["quantity"]), updated)
    if model.levels and Phase.INVENTORY not in ev.blind:
        for (item, location), ((level, _), _) in list(after.items()):
            named = ("L", level) in ev.named or ("I", item) in ev.named
            if (item, location) not in levels and not named:
                del after[(item, location)]
    return after


def expect(model: Model, files: dict[Phase, list[Line]]) -> tuple[Model, set[tuple[str, int]]]:
    """The reference: the tables after the run, and the quarantine's (phase, line_no) pairs."""
    ev = evidence(files)
    after = expect_catalog(model, files, ev)
    after.levels = expect_levels(model, files[Phase.INVENTORY], ev)
    return after, ev.quarantine


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def ingest(
    pool: AsyncConnectionPool[Conn], shop: uuid.UUID, bodies: dict[Phase, bytes], chunk: int
) -> None:
    """One full sync's ingest, as sync/service.py and sync/inventory.py run it: metafields then
    core staged split over two sessions, merged side by side, swept; inventory on its own."""
    async with tenant_scope(pool, shop) as conn:
        run = await runs.create_run(conn, shop, "full", None)
        await runs.start_attempt(conn, run.id, "property-test", None, 60.0)
        stored = await runs.get_run(conn, run.id)
    assert stored is not None
    started = stored.started_at
    assert started is not None
    async with (
        pool.connection() as catalog,
        pool.connection() as variants,
        pool.connection() as inv,
    ):
        for conn in (catalog, variants, inv):
            await conn.set_autocommit(True)
        for conn in (catalog, variants):
            await conn.execute(load_sql("ingest/staging.sql"))
        await inv.execute(load_sql("ingest/staging_inventory.sql"))
        try:
            staged = CatalogStaged()

            async def stage(phase: Phase, conn: Conn, split: Conn | None) -> PhaseStats:
                sink = QuarantineSink(pool, shop, run.id, phase.value)
                async with conn.transaction():
                    return await stage_phase(
                        conn,
                        phase,
                        chunks(bodies[phase], chunk),
                        sink,
                        StageOptions(max_bad_share=1.0, variants_to=split),
                    )

            for phase in (Phase.METAFIELDS, Phase.VARIANT_METAFIELDS, Phase.CORE):
                staged.absorb(phase, await stage(phase, catalog, variants))
            merged = await merge.merge_catalog(
                catalog,
                shop,
                run.id,
                merge.CatalogMerge(
                    metafields_complete=True,
                    partial_metafields=staged.partial,
                    metafield_files=staged.files,
                ),
                variants_conn=variants,
            )
            if not merged.first_load and not staged.core_unidentified:
                await merge.mark_deleted(catalog, shop, started, variants)
            levels = await stage(Phase.INVENTORY, inv, None)
            _, first_load = await merge.merge_inventory(inv, shop)
            if not first_load and not levels.unidentified:
                await merge.delete_missing_levels(inv, shop, started)
        finally:
            for conn in (catalog, variants):
                await conn.execute(f"DROP TABLE IF EXISTS {merge.CATALOG_STAGING}")
            await inv.execute(f"DROP TABLE IF EXISTS {merge.INVENTORY_STAGING}")
            for conn in (catalog, variants, inv):
                await conn.set_autocommit(False)
    async with tenant_scope(pool, shop) as conn:
        await runs.finish_run(conn, run.id, "completed", None)


async def stored(pool: AsyncConnectionPool[Conn], shop: uuid.UUID) -> tuple[Model, set[Any]]:
    model = Model()
    async with tenant_scope(pool, shop) as conn:
        cur = await conn.execute(
            "SELECT shopify_id, title, shopify_updated_at, metafields, deleted_at IS NOT NULL"
            " FROM products"
        )
        for sid, title, updated, mf, deleted in await cur.fetchall():
            secs = int((updated - EPOCH).total_seconds())
            model.products[sid] = Row((title,), secs, mf, deleted)
        cur = await conn.execute(
            "SELECT shopify_id, sku, product_shopify_id, shopify_updated_at, metafields,"
            " deleted_at IS NOT NULL FROM variants"
        )
        for sid, sku, parent, updated, mf, deleted in await cur.fetchall():
            secs = int((updated - EPOCH).total_seconds())
            model.variants[sid] = Row((sku, parent), secs, mf, deleted)
        cur = await conn.execute(
            "SELECT inventory_item_id, location_id, shopify_id, available, shopify_updated_at"
            " FROM inventory_levels"
        )
        for item, location, sid, available, updated in await cur.fetchall():
            secs = int((updated - EPOCH).total_seconds())
            model.levels[(item, location)] = ((sid, available), secs)
        cur = await conn.execute("SELECT run_id, phase, line_no FROM sync_quarantine")
        quarantine = {(r[0], r[1], r[2]) for r in await cur.fetchall()}
    return model, quarantine


@dataclass
class Database:
    loop: asyncio.AbstractEventLoop
    pool: AsyncConnectionPool[Conn]


@pytest.fixture
def ingest_db(database: TestDatabase) -> Iterator[Database]:
    """A loop and a pool of its own: Hypothesis runs every example inside one test call."""
    loop = asyncio.new_event_loop()
    pool = create_pool(database.app_url, PoolSizes(1, 6), name="test-properties")
    loop.run_until_complete(pool.open(wait=True))
    try:
        yield Database(loop, pool)
    finally:
        loop.run_until_complete(pool.close())
        loop.close()


@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    phases=[hypothesis.Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_tables_equal_the_valid_lines_applied_newer_wins(ingest_db: Database, data: Any) -> None:
    draw = data.draw
    loop, pool = ingest_db.loop, ingest_db.pool
    shop = loop.run_until_complete(create_shop(pool))
    model = Model()
    seen_runs: set[Any] = set()
    alive = set(PRODUCTS)
    for run in range(draw(st.integers(2, 3))):
        if run:
            # Deletions between runs: some products leave Shopify, some come back (with versions
            # older than their deletion: they stay deleted).
            alive = set(draw(st.lists(st.sampled_from(list(PRODUCTS)), unique=True, max_size=5)))
        files = build_run(draw, run, alive)
        bodies, ordered = {}, {}
        for phase in Phase:
            bodies[phase], ordered[phase] = files.render(phase)
        chunk = draw(st.sampled_from([7, 64, 1 << 16]))
        loop.run_until_complete(ingest(pool, shop, bodies, chunk))
        model, quarantine = expect(model, ordered)
        got, rows = loop.run_until_complete(stored(pool, shop))
        new_runs = {r for r, _, _ in rows} - seen_runs
        this_run = {(p, n) for r, p, n in rows if r in new_runs}
        assert len(new_runs) <= 1
        seen_runs |= new_runs
        assert got.products == model.products
        assert got.variants == model.variants
        assert got.levels == model.levels
        assert this_run == quarantine
