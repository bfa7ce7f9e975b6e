"""Date-windowed product exports written by the fast emitter give the general path's bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from graphql import parse

from shopify_emulator import EmulatorConfig, ShopConfig, bulk_plan, bulk_shards
from shopify_emulator.config import CatalogShape
from shopify_emulator.context import Context
from shopify_emulator.state import EmulatorState
from tests.emulator.test_bulk_fast import CORE, PRODUCTS_ONLY

STAMP = "%Y-%m-%dT%H:%M:%SZ"


def _stamp(epoch_s: int) -> str:
    return time.strftime(STAMP, time.gmtime(epoch_s))


def _windowed(query: str, terms: str) -> bulk_plan.BulkPlan:
    return bulk_plan.compile_plan(
        parse(query.replace("{ products {", f'{{ products(query: "{terms}") {{', 1)), 2, 5
    )


@pytest.fixture(scope="module")
def dated() -> tuple[Context, list[int]]:
    """A catalog whose overlay holds products changed inside the window, one deleted inside it and
    one created, with the updated_at window holding about a tenth of the products."""
    state = EmulatorState(
        EmulatorConfig(
            shops=[ShopConfig("dated", products=3000, seed=5)],
            catalog=CatalogShape(huge_product_every=40),
        )
    )
    shop = state.shops["dated.myshopify.com"]
    catalog = shop.catalog
    updated = list(catalog.index.updated())
    ordered = sorted(updated)
    low, high = ordered[1500], ordered[1800]
    inside = [i for i, stamp in enumerate(updated) if low <= stamp <= high]
    # Changed products leave the window (their updatedAt is now); a deleted one leaves it too.
    catalog.update_product(inside[0], {"title": "changed inside"})
    catalog.update_product(inside[1], {"status": "DRAFT"})
    catalog.delete_product(inside[2])
    catalog.create_product(title="created now")
    app = state.config.primary_app()
    ctx = Context(state=state, shop=shop, app=app, scopes=app.scopes, api_version="2026-01")
    return ctx, [low, high, updated[inside[3]]]


def _terms(bounds: list[int], name: str) -> str:
    low, high, exact = (_stamp(b) for b in bounds)
    return {
        "window": f"updated_at:>={low} updated_at:<={high}",
        "open-window": f"updated_at:>{low} updated_at:<{high}",
        "both-fields": f"updated_at:>={low} created_at:<{high} -updated_at:{exact}",
        "exact-stamp": f"updated_at:{exact}",
        "changed-since": "updated_at:>2026-01-01T00:00:00Z",
        "wide": "updated_at:>2020-01-01",
        "empty": f"updated_at:>{high} updated_at:<{low}",
    }[name]


@pytest.mark.parametrize(
    "name",
    ["window", "open-window", "both-fields", "exact-stamp", "changed-since", "wide", "empty"],
)
@pytest.mark.parametrize("order", ["grouped", "shuffled", "children_first"])
def test_dated_export_lines_equal_the_general_path(
    dated: tuple[Context, list[int]], name: str, order: str
) -> None:
    ctx, bounds = dated
    for query in (CORE, PRODUCTS_ONLY):
        plan = _windowed(query, _terms(bounds, name))
        fast = bulk_plan.product_groups(plan, ctx, order, 0, ctx.catalog.upper)
        assert fast is not None, "a timestamp-only query must take the emitter"
        general = bulk_plan.object_groups(plan, ctx, order)
        fast_lines = [
            line for group, _ in bulk_plan.root_lines(plan, ctx, order, 3, fast) for line in group
        ]
        general_lines = [
            line
            for group, _ in bulk_plan.root_lines(plan, ctx, order, 3, general)
            for line in group
        ]
        assert fast_lines == general_lines
        if name in ("window", "wide", "changed-since"):
            assert fast_lines, "the query was meant to select products"


def test_changed_products_are_read_by_their_current_values(
    dated: tuple[Context, list[int]],
) -> None:
    ctx, _ = dated
    plan = _windowed(PRODUCTS_ONLY, "updated_at:>2026-01-01T00:00:00Z")
    fast = bulk_plan.product_groups(plan, ctx, "grouped", 0, ctx.catalog.upper)
    assert fast is not None
    titles = [group[0].split(b'"title":"')[1].split(b'"')[0] for group, _ in fast]
    # The two changed products and the created one: no generated stamp lies past the horizon.
    assert len(titles) == 3
    assert titles[-1] == b"created now"
    assert b"changed inside" in titles


@pytest.mark.parametrize(
    "terms",
    [
        "status:active updated_at:>2024-01-01T00:00:00Z",
        "updated_at:>2024-1-5T00:00:00Z",
        "updated_at:>2024-01-05T00:00:00.5Z tag:bulk-tag-01",
        "published_at:>2024-01-01T00:00:00Z",
    ],
)
def test_queries_on_other_fields_take_the_general_path(
    dated: tuple[Context, list[int]], terms: str
) -> None:
    # A term the timestamps cannot answer, or a value whose text compares otherwise than its time.
    ctx, _ = dated
    assert bulk_plan.product_groups(_windowed(CORE, terms), ctx, "grouped", 0, 3000) is None


def test_group_writer_writes_every_group_in_order(tmp_path: Path) -> None:
    # More groups than one writev takes, and more bytes than one flush: nothing lost or reordered.
    path = os.path.join(str(tmp_path), "out.jsonl")
    groups = [[f"{n}:{'x' * (n % 700)}\n".encode() for n in range(k, k + 3)] for k in range(4000)]
    with open(path, "wb") as out:
        writer = bulk_shards.GroupWriter(out.fileno())
        flushes = sum(writer.add(group) for group in groups)
        writer.flush()
    expected = b"".join(line for group in groups for line in group)
    assert flushes >= 3
    assert writer.size == len(expected)
    with open(path, "rb") as written:
        assert written.read() == expected
