"""The console's pages (GET only: nothing here changes state)."""

from __future__ import annotations

import itertools
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from neanelu.db.pool import global_scope
from neanelu.queue.ratelimit import CostLimiter
from neanelu.queue.settings import QUEUE_NAMES
from neanelu.sync.progress import progress_key
from neanelu.web.console import audit, catalog_search, queues, reads, sampler, timeseries
from neanelu.web.console.charts import line_chart
from neanelu.web.console.deps import operator, runtime
from neanelu.web.console.reads import ProductFilter, console_scope
from neanelu.web.console.render import page, static_response
from neanelu.web.console.sessions import Operator

router = APIRouter()
Who = Annotated[Operator, Depends(operator)]
ACTIVE = ("queued", "running")
BUDGET_EVERY_S = 2.0
BUDGET_KEPT = 900
OVERVIEW_JOBS = 10  # per dead/failed set on the queues page; the set's own page lists more


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@router.get("/admin", include_in_schema=False)
async def home() -> Response:
    return RedirectResponse("/admin/shops", status_code=303)


@router.get("/admin/static/{name}", include_in_schema=False)
async def static(name: str, request: Request) -> Response:
    return static_response(name, request)


@router.get("/admin/shops", include_in_schema=False)
async def shops_page(request: Request, who: Who) -> Response:
    rt = runtime(request)
    async with console_scope(rt.pool, who.session_hash) as conn:
        rows = await reads.shops(conn)
    paused = await queues.paused_groups(rt.queues)
    for row in rows:
        row["paused"] = row["id"] in paused
    return page(request, "shops.html", who, shops=rows)


async def _live(request: Request, who: Operator, shop_id: UUID) -> dict[str, Any]:
    """What the shop page refreshes while it is open: runs, the live phase, the budget."""
    rt = runtime(request)
    async with console_scope(rt.pool, who.session_hash) as conn:
        runs = await reads.runs(conn, shop_id)
    raw = await rt.redis.hgetall(progress_key(shop_id))
    progress = {_text(k): _text(v) for k, v in raw.items()}
    active = next((r for r in runs if r["status"] in ACTIVE), None)
    live = progress if active and progress.get("run_id") == str(active["id"]) else None
    # The workers keep budgets under the default prefix, whatever the queues use.
    state = await CostLimiter(rt.redis).state(str(shop_id))
    points = await timeseries.record(
        rt.redis,
        sampler.budget_key(rt.queues.prefix, shop_id),
        {"used": state.used, "capacity": state.capacity},
        every_s=BUDGET_EVERY_S,
        keep=BUDGET_KEPT,
    )
    chart = line_chart(
        "Shopify cost budget: points in use and bucket size",
        [p.at for p in points],
        {
            "in use": [p.values["used"] for p in points],
            "bucket": [p.values["capacity"] for p in points],
        },
    )
    return {"runs": runs, "active": active, "live": live, "budget": state, "budget_chart": chart}


@router.get("/admin/shops/{shop_id}", include_in_schema=False)
async def shop_page(request: Request, who: Who, shop_id: UUID) -> Response:
    rt = runtime(request)
    async with console_scope(rt.pool, who.session_hash) as conn:
        shop = await reads.shop(conn, shop_id)
        if shop is None:
            raise HTTPException(404, f"no shop {shop_id}")
        webhooks = await reads.webhooks(conn, shop_id)
        apps = await reads.owner_apps(conn, shop_id)
        parity = await reads.parity(conn, shop_id)
    groups = (await queues.groups(rt.queues, [str(shop_id)]))[str(shop_id)]
    shop["paused"] = all(g.paused for g in groups)
    return page(
        request,
        "shop.html",
        who,
        shop=shop,
        webhooks=webhooks,
        owner_apps=apps,
        groups=groups,
        parity=parity,
        **await _live(request, who, shop_id),
    )


@router.get("/admin/shops/{shop_id}/live", include_in_schema=False)
async def shop_live(request: Request, who: Who, shop_id: UUID) -> Response:
    """The fragment the shop page polls (every second while a run is active, else every 3 s)."""
    return page(
        request, "live.html", who, shop={"id": str(shop_id)}, **await _live(request, who, shop_id)
    )


@router.get("/admin/shops/{shop_id}/runs/{run_id}", include_in_schema=False)
async def run_page(request: Request, who: Who, shop_id: UUID, run_id: UUID) -> Response:
    rt = runtime(request)
    async with console_scope(rt.pool, who.session_hash) as conn:
        shop = await reads.shop(conn, shop_id)
        run = await reads.run(conn, shop_id, run_id)
        if shop is None or run is None:
            raise HTTPException(404, f"no run {run_id} of shop {shop_id}")
        lines = await reads.quarantine(conn, shop_id, run_id)
    return page(request, "run.html", who, shop=shop, run=run, quarantine=lines)


@router.get("/admin/shops/{shop_id}/products", include_in_schema=False)
async def products_page(
    request: Request,
    who: Who,
    shop_id: UUID,
    after: Annotated[int | None, Query(ge=0)] = None,
    status: Annotated[str | None, Query(max_length=40)] = None,
    vendor: Annotated[str | None, Query(max_length=200)] = None,
    title: Annotated[str | None, Query(max_length=200)] = None,
    q: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    rt = runtime(request)
    filters = ProductFilter(status or None, vendor or None, title or None)
    async with console_scope(rt.pool, who.session_hash) as conn:
        shop = await reads.shop(conn, shop_id)
        if shop is None:
            raise HTTPException(404, f"no shop {shop_id}")
        found = None if q else await reads.products(conn, shop_id, after, filters)
    if q:
        outcome = await catalog_search.by_meaning(rt, shop_id, q, filters)
        return page(request, "products.html", who, shop=shop, filters=filters, q=q, search=outcome)
    assert found is not None
    return page(
        request,
        "products.html",
        who,
        shop=shop,
        products=found.rows,
        filters=filters,
        after=after,
        next_after=found.next_after,
        searched_on=found.searched_on,
    )


@router.get("/admin/shops/{shop_id}/products/{shopify_id}", include_in_schema=False)
async def product_page(request: Request, who: Who, shop_id: UUID, shopify_id: int) -> Response:
    rt = runtime(request)
    async with console_scope(rt.pool, who.session_hash) as conn:
        shop = await reads.shop(conn, shop_id)
        product = await reads.product(conn, shop_id, shopify_id) if shop else None
    if shop is None or product is None:
        raise HTTPException(404, f"no product {shopify_id} in shop {shop_id}")
    return page(request, "product.html", who, shop=shop, product=product)


def _rates(points: list[timeseries.Point], metric: str) -> dict[str, list[float]]:
    """Per-minute rates between neighbouring samples of running totals."""
    series: dict[str, list[float]] = {}
    for name in QUEUE_NAMES:
        key = f"{name}:{metric}"
        rates = [0.0]
        for a, b in itertools.pairwise(points):
            delta = b.values.get(key, 0) - a.values.get(key, 0)
            rates.append(max(delta, 0) * 60 / max(b.at - a.at, 1e-3))
        series[name] = rates
    return series


async def _domains(request: Request, who: Operator) -> dict[str, str]:
    """Shop id -> domain, to name the groups (one per shop) of the queues."""
    async with console_scope(runtime(request).pool, who.session_hash) as conn:
        return await reads.shop_domains(conn)


@router.get("/admin/queues", include_in_schema=False)
async def queues_page(request: Request, who: Who) -> Response:
    rt = runtime(request)
    figures = await queues.counts(rt.queues)
    points = await queues.throughput(rt.queues, figures)
    xs = [p.at for p in points]
    shops = await _domains(request, who)
    groups = await queues.groups(rt.queues, sorted(await queues.busy_groups(rt.queues)))
    active = {
        g: rows
        for g, rows in groups.items()
        if any(r.waiting or r.active or r.paused for r in rows)
    }
    busy = [(shops.get(g, g), rows) for g, rows in active.items()]
    terminal = {
        (name, which): await queues.terminal_jobs(rt.queues, name, which, OVERVIEW_JOBS, 0)
        for name in rt.queues.names
        for which in queues.TERMINAL
    }
    return page(
        request,
        "queues.html",
        who,
        figures=figures,
        names=rt.queues.names,
        completed_chart=line_chart("Jobs completed per minute", xs, _rates(points, "completed")),
        failed_chart=line_chart("Jobs failed or dead per minute", xs, _rates(points, "failed")),
        busy=sorted(busy),
        idle_shops=len(set(shops) - set(active)),
        terminal=terminal,
        scheduled=await queues.scheduled(rt.queues),
        domains=shops,
    )


@router.get("/admin/queues/{queue}/{which}", include_in_schema=False)
async def terminal_page(
    request: Request, who: Who, queue: str, which: str, offset: Annotated[int, Query(ge=0)] = 0
) -> Response:
    rt = runtime(request)
    if queue not in rt.queues.names or which not in queues.TERMINAL:
        raise HTTPException(404, f"no {which!r} set of queue {queue!r}")
    jobs = await queues.terminal_jobs(rt.queues, queue, which, 100, offset)
    return page(
        request,
        "terminal.html",
        who,
        queue=queue,
        which=which,
        jobs=jobs,
        offset=offset,
        domains=await _domains(request, who),
    )


@router.get("/admin/queues/{queue}/jobs/{job_id}", include_in_schema=False)
async def job_page(request: Request, who: Who, queue: str, job_id: str) -> Response:
    rt = runtime(request)
    if queue not in rt.queues.names:
        raise HTTPException(404, f"no queue {queue!r}")
    job = await queues.job(rt.queues, queue, job_id)
    if job is None:
        raise HTTPException(404, f"no job {job_id!r} on queue {queue!r}")
    return page(request, "job.html", who, job=job, domains=await _domains(request, who))


@router.get("/admin/audit", include_in_schema=False)
async def audit_page(
    request: Request, who: Who, before: Annotated[int | None, Query(ge=1)] = None
) -> Response:
    rt = runtime(request)
    async with global_scope(rt.pool) as conn:
        rows = await audit.recent(conn, 100, before)
    return page(
        request,
        "audit.html",
        who,
        rows=rows,
        next_before=rows[-1].id if len(rows) == 100 else None,
    )
