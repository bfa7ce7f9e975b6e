"""The fast writers give the bytes the general path gives: the line emitter and the sharded export."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from graphql import parse

from shopify_emulator import EmulatorConfig, ShopConfig, bulk_plan, ids
from shopify_emulator.config import CatalogShape, ChildOrder
from shopify_emulator.context import Context
from shopify_emulator.state import EmulatorState
from tests.emulator.clients import Connect, MakeEmulator

CORE = (
    "{ products { edges { node { id handle title vendor productType status tags descriptionHtml createdAt "
    "updatedAt variants { edges { node { id sku title price compareAtPrice barcode position inventoryQuantity "
    "createdAt updatedAt inventoryItem { id } selectedOptions { name value } } } } } } } }"
)
# Aliases, __typename, another key order and the extra fields the emitter writes.
VARIED = (
    "{ products { nodes { __typename name: title id legacyResourceId publishedAt "
    "variants { nodes { price label: displayName __typename taxable inventoryPolicy legacyResourceId "
    "inventoryItem { __typename legacyResourceId id } selectedOptions { value __typename name } } } } } }"
)
PRODUCTS_ONLY = "{ products { edges { node { id title tags descriptionHtml } } } }"
# The full sync's inventory query, and the same fields aliased, reordered, with __typename.
# The full sync's variant metafields query, and the same fields aliased and reordered.
VARIANT_METAFIELDS = (
    "{ productVariants { edges { node { __typename id metafields { edges { node { __typename id "
    "namespace key type value updatedAt } } } } } } }"
)
VARIANT_METAFIELDS_VARIED = (
    "{ productVariants { nodes { legacyResourceId mf: metafields { nodes { value createdAt key id "
    "namespace type } } id } } }"
)
INVENTORY = (
    "{ inventoryItems { edges { node { __typename id inventoryLevels { edges { node { __typename id "
    'location { id } quantities(names: ["available"]) { name quantity } updatedAt } } } } } } }'
)
INVENTORY_VARIED = (
    "{ inventoryItems { nodes { legacyResourceId id lvl: inventoryLevels { nodes { updatedAt "
    'q: quantities(names: ["available"]) { quantity name } location { __typename id } id } } } } }'
)


def _context(shape: CatalogShape, size: int, seed: int) -> Context:
    state = EmulatorState(
        EmulatorConfig(shops=[ShopConfig("fast", products=size, seed=seed)], catalog=shape)
    )
    shop = state.shops["fast.myshopify.com"]
    # An overlay product in the middle: the emitter must hand it to the general path.
    shop.catalog.update_product(7, {"title": 'Quote " and \\ backslash'})
    shop.catalog.delete_product(8)
    # A level changed: its product goes to the overlay, and its items to the general path.
    shop.catalog.set_inventory(ids.inventory_item_id(3, 0), 1, 5)
    app = state.config.primary_app()
    return Context(state=state, shop=shop, app=app, scopes=app.scopes, api_version="2026-01")


@pytest.mark.parametrize(
    "shape",
    [
        CatalogShape(),
        CatalogShape(locations=1, variants_mean=12.0),
        CatalogShape(locations=9, variants_mean=70.0, huge_product_every=50),
    ],
    ids=["default", "one-location-many-variants", "nine-locations-huge"],
)
@pytest.mark.parametrize(
    "query",
    [
        CORE,
        VARIED,
        PRODUCTS_ONLY,
        INVENTORY,
        INVENTORY_VARIED,
        VARIANT_METAFIELDS,
        VARIANT_METAFIELDS_VARIED,
    ],
    ids=[
        "core",
        "varied",
        "products",
        "inventory",
        "inventory-varied",
        "variant-metafields",
        "variant-metafields-varied",
    ],
)
@pytest.mark.parametrize("order", ["grouped", "children_first"])
def test_emitter_lines_equal_the_general_path(shape: CatalogShape, query: str, order: str) -> None:
    # The huge shape's 150 products hold three huge ones and ~100k inventory lines: the general
    # path's side of the comparison took 15 s a query at 600.
    size = 150 if shape.huge_product_every else 600
    ctx = _context(shape, size, seed=4)
    plan = bulk_plan.compile_plan(parse(query), 2, 5)
    fast = bulk_plan.product_groups(plan, ctx, order, 0, ctx.catalog.upper)
    assert fast is not None
    general = bulk_plan.object_groups(plan, ctx, order)
    fast_lines = [line for group, _ in fast for line in group]
    general_lines = [line for group, _ in general for line in group]
    assert len(fast_lines) == len(general_lines) >= size - 1  # one product deleted
    assert fast_lines == general_lines


# sha256 and line count of whole exports (seed 11, writer seed 3), taken from the per-product emitter
# that came before the batch emitter: the batches must not change a byte of any shape, order or plan.
PREVIOUS_WRITER = {
    ("default", "core", "grouped"): (
        19917,
        "4087e9fd1dcf65b334a5bc8315682bcd7f521c01edad547f3cb420823595267a",
    ),
    ("default", "core", "shuffled"): (
        19917,
        "7c4b3d9bd6b2972aa5839249e10ff47e8fa592694769b519cad0e2cc3fea4369",
    ),
    ("default", "core", "children_first"): (
        19917,
        "e5b745755253bbee6a1cfc8d5df9d1aaf54d42c90c04e8bf86df3c67727a240f",
    ),
    ("default", "varied", "grouped"): (
        19917,
        "b4840d5f96a10fd68a86772745cda8c54d1f5a999836f8a228e6486836b28008",
    ),
    ("default", "varied", "shuffled"): (
        19917,
        "9c9c52f2e63e0bae38ec6d60ef1be89ee06f64162d4f24d0d52da182face1dc2",
    ),
    ("default", "varied", "children_first"): (
        19917,
        "06031c3dc7db07a5a0517ec164b69d34e8aaf8bce8514852ede01469eeae17f9",
    ),
    ("nine", "core", "grouped"): (
        35628,
        "ae4f1813f280b6856ec02444bbba2fcb2e1e432a3712bb42a29d8f247964a369",
    ),
    ("nine", "core", "shuffled"): (
        35628,
        "dd7377f32b5a8cf081b6b2d04a67e9f31c605c99f33eb3b46808830c4d6b0aea",
    ),
    ("nine", "core", "children_first"): (
        35628,
        "17d3ff4cd2103f0790985da7a200ab4bf5fbee889a76d42a8c5faeceb8d59355",
    ),
    ("nine", "varied", "grouped"): (
        35628,
        "7385bd553bad0355eb16b55dad9d0cb69d9b96be21adf42615d812578524d28d",
    ),
    ("nine", "varied", "shuffled"): (
        35628,
        "80b7f16588d98e3055fc726ed0ce7d3b633cb7a5688e4965eaa5e44a4efc1ab4",
    ),
    ("nine", "varied", "children_first"): (
        35628,
        "8c918774c0a3de1f02e321d7735b2c18450396ce2ee56616cf87f3dcb448231b",
    ),
}
DIGEST_SHAPES = {
    "default": (CatalogShape(), 5000),
    "nine": (CatalogShape(locations=9, variants_mean=70.0, huge_product_every=50), 300),
}


@pytest.mark.parametrize(("shape_name", "query_name", "order"), sorted(PREVIOUS_WRITER))
def test_export_bytes_equal_the_previous_writer(
    shape_name: str, query_name: str, order: str
) -> None:
    shape, size = DIGEST_SHAPES[shape_name]
    state = EmulatorState(
        EmulatorConfig(shops=[ShopConfig("fixed", products=size, seed=11)], catalog=shape)
    )
    shop = state.shops["fixed.myshopify.com"]
    app = state.config.primary_app()
    ctx = Context(state=state, shop=shop, app=app, scopes=app.scopes, api_version="2026-01")
    plan = bulk_plan.compile_plan(parse({"core": CORE, "varied": VARIED}[query_name]), 2, 5)
    digest = hashlib.sha256()
    lines = 0
    for group, _ in bulk_plan.root_lines(plan, ctx, order, seed=3):
        for line in group:
            digest.update(line)
            lines += 1
    assert (lines, digest.hexdigest()) == PREVIOUS_WRITER[shape_name, query_name, order]


def test_changed_products_at_batch_edges_take_the_general_path() -> None:
    # The emitter writes runs of generated products between changed ones, a batch at a time: a change
    # on either side of a batch edge, a deletion and a created product must each land in place.
    ctx = _context(CatalogShape(), 2 * bulk_plan.BATCH + 5, seed=9)
    catalog = ctx.catalog
    edge = bulk_plan.BATCH
    for index in (0, edge - 1, edge):
        catalog.update_product(index, {"title": f"changed {index}"})
    catalog.delete_product(2 * edge - 1)
    catalog.create_product(title="created after the generated range")
    plan = bulk_plan.compile_plan(parse(CORE), 2, 5)
    fast = bulk_plan.product_groups(plan, ctx, "grouped", 0, catalog.upper)
    assert fast is not None
    fast_lines = [line for group, _ in fast for line in group]
    general = bulk_plan.object_groups(plan, ctx, "grouped")
    assert fast_lines == [line for group, _ in general for line in group]
    titles = [json.loads(line).get("title") for line in fast_lines if b"__parentId" not in line]
    assert titles.count("changed 1023") == titles.count("changed 1024") == 1
    assert titles[-1] == "created after the generated range"
    assert len(titles) == 2 * edge + 5 - 2 + 1  # products 8 and 2047 deleted, one created


def test_plans_the_emitter_does_not_write_use_the_general_path() -> None:
    ctx = _context(CatalogShape(), 20, seed=1)
    for query in (
        "{ products { edges { node { id totalInventory } } } }",
        '{ products(query: "status:active") { edges { node { id } } } }',
        "{ products { edges { node { id metafields { edges { node { id } } } } } } }",
        "{ inventoryItems { edges { node { id sku } } } }",
        '{ productVariants { edges { node { id metafields(namespace: "variant") { edges { node { '
        "id } } } } } } }",
        "{ inventoryItems { edges { node { id inventoryLevels { edges { node { "
        'quantities(names: ["on_hand"]) { quantity } } } } } } } }',
    ):
        assert (
            bulk_plan.product_groups(
                bulk_plan.compile_plan(parse(query), 2, 5), ctx, "grouped", 0, 20
            )
            is None
        )


def _lines(url: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in httpx.get(url).text.splitlines()]


@pytest.mark.parametrize("order", ["grouped", "shuffled"])
def test_sharded_export_equals_one_writer(
    make_emulator: MakeEmulator, connect: Connect, order: ChildOrder
) -> None:
    shops = [
        ShopConfig(name="one", products=300, seed=2),
        ShopConfig(name="many", products=300, seed=2),
    ]
    single = connect(
        make_emulator(EmulatorConfig(shops=shops[:1], bulk_workers=1, bulk_child_order=order)),
        "one",
    )
    sharded = connect(
        make_emulator(
            EmulatorConfig(
                shops=shops[1:], bulk_workers=3, bulk_shard_min_products=0, bulk_child_order=order
            )
        ),
        "many",
    )
    group = order == "grouped"
    one = single.wait_bulk(single.run_bulk(CORE, group=group))
    many = sharded.wait_bulk(sharded.run_bulk(CORE, group=group))
    assert many["status"] == "COMPLETED"
    assert (many["objectCount"], many["rootObjectCount"], many["fileSize"]) == (
        one["objectCount"],
        one["rootObjectCount"],
        one["fileSize"],
    )
    one_lines, many_lines = _lines(one["url"]), _lines(many["url"])
    if group:
        assert one_lines == many_lines
    else:
        assert sorted(map(json.dumps, one_lines)) == sorted(map(json.dumps, many_lines))
        roots = [line["id"] for line in many_lines if "__parentId" not in line]
        assert roots == sorted(roots, key=lambda gid: int(gid.rsplit("/", 1)[1]))


def test_writer_processes_do_not_hold_the_servers_connections(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    # A forked writer that kept copies of the server's sockets kept every connection the server closed
    # meanwhile (keep-alive timeout, `Connection: close`) open to its client, which then sent requests
    # nobody read and got an EOF once the writer exited. The writers must hold no socket at all.
    emulator = make_emulator(
        EmulatorConfig(
            shops=[ShopConfig(name="forks", products=150_000)],
            bulk_workers=2,
            bulk_shard_min_products=0,
        )
    )
    shop = connect(emulator, "forks")
    raw = socket.create_connection(("127.0.0.1", emulator.port))
    raw.sendall(b"GET /_emulator/health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"200 OK" in raw.recv(65536)  # a kept-alive connection, open before the fork
    before = {child.pid for child in psutil.Process().children()}
    op_id = shop.run_bulk(CORE, group=True)
    writers: list[psutil.Process] = []
    deadline = time.monotonic() + 60
    while not writers and time.monotonic() < deadline:
        writers = [c for c in psutil.Process().children() if c.pid not in before]
        time.sleep(0.005)
    held = []
    for writer in writers:
        try:
            # A child closes what it inherited first thing, but it is visible from the fork on: a
            # look during that first moment (a run with many open descriptors, under coverage)
            # saw the parent's sockets. Look once it is down to its own few descriptors, or at
            # the latest after a second (a writer that never closes them is still caught).
            settle = time.monotonic() + 1.0
            while len(os.listdir(f"/proc/{writer.pid}/fd")) > _OWN_FDS:
                if time.monotonic() > settle:
                    break
                time.sleep(0.002)
            held += [
                fd for fd in os.listdir(f"/proc/{writer.pid}/fd") if _is_socket(writer.pid, fd)
            ]
        except FileNotFoundError:
            continue  # that writer is done already
    raw.close()
    assert writers, "the export was not written by forked processes"
    assert held == []
    assert shop.wait_bulk(op_id, timeout=120)["status"] == "COMPLETED"


# A writer's own: the standard streams, its pipe to the parent and its shard file.
_OWN_FDS = 5


def _is_socket(pid: int, fd: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    except FileNotFoundError:
        return False


def test_a_sharded_result_is_served_as_one_object_across_its_parts(
    make_emulator: MakeEmulator, connect: Connect, tmp_path: Path
) -> None:
    # Three writers leave three parts; the link serves their concatenation, and a byte range that
    # starts in one part and ends in the next is cut from it as from one file.
    emulator = make_emulator(
        EmulatorConfig(
            shops=[ShopConfig(name="parts", products=300, seed=5)],
            bulk_workers=3,
            bulk_shard_min_products=0,
            bulk_dir=str(tmp_path),
        )
    )
    shop = connect(emulator, "parts")
    op = shop.wait_bulk(shop.run_bulk(CORE, group=True))
    parts = sorted(tmp_path.glob("*/*.jsonl.part*"))
    assert len(parts) == 2
    full = httpx.get(op["url"]).content
    assert len(full) == int(op["fileSize"])
    assert full.count(b"\n") == int(op["objectCount"])
    first_part = os.path.getsize(str(parts[0]).split(".part")[0])
    start, end = first_part - 100, first_part + 99
    ranged = httpx.get(op["url"], headers={"Range": f"bytes={start}-{end}"})
    assert ranged.status_code == 206
    assert ranged.content == full[start : end + 1]
    assert ranged.headers["content-range"] == f"bytes {start}-{end}/{len(full)}"
    suffix = httpx.get(op["url"], headers={"Range": "bytes=-500"})
    assert (suffix.status_code, suffix.content) == (206, full[-500:])
    past = httpx.get(op["url"], headers={"Range": f"bytes={len(full)}-"})
    assert past.status_code == 416
    assert past.headers["content-range"] == f"bytes */{len(full)}"
    # Cloud Storage answers several ranges with the whole object.
    several = httpx.get(op["url"], headers={"Range": "bytes=0-9,20-29"})
    assert (several.status_code, several.content) == (200, full)
    head = httpx.head(op["url"])
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) == len(full)
