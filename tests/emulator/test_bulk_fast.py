"""The fast writers give the bytes the general path gives: the line emitter and the sharded export."""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import httpx
import psutil
import pytest
from graphql import parse

from shopify_emulator import EmulatorConfig, ShopConfig, bulk_plan
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


def _context(shape: CatalogShape, size: int, seed: int) -> Context:
    state = EmulatorState(
        EmulatorConfig(shops=[ShopConfig("fast", products=size, seed=seed)], catalog=shape)
    )
    shop = state.shops["fast.myshopify.com"]
    # An overlay product in the middle: the emitter must hand it to the general path.
    shop.catalog.update_product(7, {"title": 'Quote " and \\ backslash'})
    shop.catalog.delete_product(8)
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
@pytest.mark.parametrize("query", [CORE, VARIED, PRODUCTS_ONLY], ids=["core", "varied", "products"])
@pytest.mark.parametrize("order", ["grouped", "children_first"])
def test_emitter_lines_equal_the_general_path(shape: CatalogShape, query: str, order: str) -> None:
    ctx = _context(shape, 600, seed=4)
    plan = bulk_plan.compile_plan(parse(query), 2, 5)
    fast = bulk_plan.product_groups(plan, ctx, order, 0, ctx.catalog.upper)
    assert fast is not None
    general = bulk_plan.object_groups(plan, ctx, order)
    fast_lines = [line for group, _ in fast for line in group]
    general_lines = [line for group, _ in general for line in group]
    assert len(fast_lines) == len(general_lines) >= 599  # 600 products, one deleted
    assert fast_lines == general_lines


def test_plans_the_emitter_does_not_write_use_the_general_path() -> None:
    ctx = _context(CatalogShape(), 20, seed=1)
    for query in (
        "{ products { edges { node { id totalInventory } } } }",
        '{ products(query: "status:active") { edges { node { id } } } }',
        "{ products { edges { node { id metafields { edges { node { id } } } } } } }",
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
            held += [
                fd for fd in os.listdir(f"/proc/{writer.pid}/fd") if _is_socket(writer.pid, fd)
            ]
        except FileNotFoundError:
            continue  # that writer is done already
    raw.close()
    assert writers, "the export was not written by forked processes"
    assert held == []
    assert shop.wait_bulk(op_id, timeout=120)["status"] == "COMPLETED"


def _is_socket(pid: int, fd: str) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    except FileNotFoundError:
        return False
