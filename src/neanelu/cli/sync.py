"""`neanelu sync ...`: a full sync in the foreground, run status, and the parity check."""

from __future__ import annotations

import time
from typing import Annotated
from uuid import UUID

import typer
from redis.asyncio import Redis
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from neanelu.cli.common import (
    ShopOption,
    console,
    err_console,
    installed_shop_id,
    run,
    settings_from,
    shop_domain,
    text_of,
)
from neanelu.config import Settings
from neanelu.db.pool import tenant_scope
from neanelu.db.services import resolve_services
from neanelu.sync import repository as runs
from neanelu.sync.progress import PhaseProgress, ProgressReporter, progress_key
from neanelu.sync.service import PHASES, SyncFailed, SyncSummary, request_full_sync, run_sync
from neanelu.sync.verify import ParityReport, verify_sample
from neanelu.worker.resources import open_resources

app = typer.Typer(help="Catalog syncs: run one, watch them, check parity.", no_args_is_help=True)


class PhaseBars:
    """One Rich progress bar per phase: lines against Shopify's count, rows/s, bytes."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}

    async def __call__(self, p: PhaseProgress) -> None:
        task = self.tasks.get(p.phase)
        if task is None:
            task = self.progress.add_task(p.phase, total=p.expected_lines or None, rate="", size="")
            self.tasks[p.phase] = task
        rate = p.rows / p.seconds if p.seconds else 0.0
        total = p.expected_lines or (p.rows if p.done else None)
        done = p.lines if p.phase != "merge" else p.rows
        self.progress.update(
            task,
            completed=done,
            total=total or None,
            rate=f"{rate:,.0f} rows/s",
            size=f"{p.bytes / 2**20:,.1f} MiB",
        )


def summary_table(summary: SyncSummary, seconds: float) -> Table:
    table = Table(title=f"sync {summary.run_id} {summary.status}")
    for column in ("phase", "lines", "rows", "bad lines", "MiB", "seconds", "rows/s"):
        table.add_column(column, justify="right" if column != "phase" else "left")
    for name, p in summary.phases.items():
        rate = p.rows / p.seconds if p.seconds else 0.0
        table.add_row(
            name,
            f"{p.lines:,}",
            f"{p.rows:,}",
            f"{p.bad_lines:,}",
            f"{p.bytes / 2**20:,.1f}",
            f"{p.seconds:.2f}",
            f"{rate:,.0f}",
        )
    table.caption = (
        f"{summary.products:,} products, {summary.variants:,} variants, "
        f"{summary.inventory_levels:,} inventory levels written; {summary.marked_deleted:,} "
        f"marked deleted; {summary.orphans:,} orphans; {seconds:.1f} s in all"
    )
    if summary.orphan_metafields:
        table.caption += f"\n{summary.orphan_metafields:,} orphan metafields quarantined"
    for name, ids in summary.kept.items():
        table.caption += (
            f"\n{len(ids):,} {name} kept as stored (named by quarantined lines): "
            f"{', '.join(map(str, ids[:5]))}{' ...' if len(ids) > 5 else ''}"
        )
    if summary.unswept:
        table.caption += (
            f"\nnot swept (a quarantined line names no id): {', '.join(summary.unswept)}"
        )
    for namespace, reason in summary.unavailable_metafields.items():
        table.caption += f"\nmetafields of {namespace}: unavailable ({reason}); stored ones kept"
    return table


async def run_full_sync(settings: Settings, domain: str) -> SyncSummary:
    services = resolve_services(settings)
    async with open_resources(settings, services, concurrency=1) as resources:
        shop_id = await installed_shop_id(resources.runtime.pool, domain)
        async with tenant_scope(resources.runtime.pool, shop_id) as conn:
            run_row = await request_full_sync(conn, shop_id)
        columns = (
            TextColumn("{task.description:<20}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>16}"),
            TextColumn("{task.fields[size]:>12}"),
            TimeElapsedColumn(),
        )
        started = time.perf_counter()
        with Progress(*columns, console=console) as progress:
            bars = PhaseBars(progress)
            reporter = ProgressReporter(resources.runtime.redis, shop_id, run_row.id, bars)
            summary = await run_sync(resources.sync, shop_id, run_row.id, listener=reporter)
        console.print(summary_table(summary, time.perf_counter() - started))
        return summary


@app.command("full")
def full(ctx: typer.Context, shop: ShopOption) -> None:
    """Run a full sync of the shop now, in the foreground, with a progress bar per phase."""
    try:
        run(run_full_sync(settings_from(ctx), shop_domain(shop)))
    except SyncFailed as exc:
        err_console.print(f"[red]sync failed: {exc}[/red]")
        raise typer.Exit(1) from None


@app.command("status")
def status(
    ctx: typer.Context,
    shop: ShopOption,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Runs to list")] = 10,
    run_id: Annotated[
        UUID | None, typer.Option("--run", help="List the attempts of this run (default: latest)")
    ] = None,
) -> None:
    """The shop's latest runs, whether a running one's holder is still alive, the attempts of
    the latest run (each with its error), and the live progress of the current one."""
    run(_status(settings_from(ctx), shop_domain(shop), limit, run_id))


def holder_state(attempt: runs.RunAttempt) -> str:
    """What became of a running run's latest attempt, as its lease says."""
    who = f"attempt {attempt.attempt} on {attempt.holder}" + (
        f" (job {attempt.job_id})" if attempt.job_id else ""
    )
    if not attempt.open:
        return f"{who} ended {attempt.outcome}; the next attempt has not started yet"
    heartbeat = f"last heartbeat {attempt.heartbeat_age_s:.0f} s ago"
    if attempt.lease_expired_s > 0:
        return (
            f"{who}: worker lease expired {attempt.lease_expired_s:.0f} s ago, {heartbeat}: its"
            " holder stopped renewing (killed, hung or cut off); the queue runs the job again"
            " once its own lease ends"
        )
    return f"{who}: alive, {heartbeat}"


def attempts_table(run_row: runs.SyncRun, attempts: list[runs.RunAttempt]) -> Table:
    table = Table(title=f"attempts of run {run_row.id}")
    for column in ("attempt", "holder", "started", "ended", "outcome", "error"):
        table.add_column(column)
    for a in attempts:
        table.add_row(
            str(a.attempt),
            a.holder + (f" job {a.job_id}" if a.job_id else ""),
            f"{a.started_at:%Y-%m-%d %H:%M:%S}",
            f"{a.ended_at:%Y-%m-%d %H:%M:%S}" if a.ended_at else "",
            a.outcome or "running",
            a.error or "",
        )
    return table


async def _status(settings: Settings, domain: str, limit: int, run_id: UUID | None) -> None:
    services = resolve_services(settings)
    async with open_resources(settings, services, concurrency=1) as resources:
        shop_id = await installed_shop_id(resources.runtime.pool, domain)
        async with tenant_scope(resources.runtime.pool, shop_id) as conn:
            latest = await runs.latest_runs(conn, limit)
            chosen = await runs.get_run(conn, run_id) if run_id else next(iter(latest), None)
            if run_id is not None and chosen is None:
                err_console.print(f"[red]--run: no run {run_id} for {domain}[/red]")
                raise typer.Exit(2)
            wanted = {r.id for r in latest if r.status == "running"}
            wanted |= {chosen.id} if chosen is not None else set()
            attempts = {rid: await runs.attempts_of(conn, rid) for rid in wanted}
        redis: Redis = resources.runtime.redis
        raw = await redis.hgetall(progress_key(shop_id))
        live = {text_of(k): text_of(v) for k, v in raw.items()}
    table = Table(title=f"sync runs of {domain}")
    for column in ("run", "kind", "status", "phase", "attempts", "started", "finished", "error"):
        table.add_column(column)
    for r in latest:
        table.add_row(
            str(r.id),
            r.kind,
            r.status,
            r.phase,
            str(r.attempts),
            f"{r.started_at:%Y-%m-%d %H:%M:%S}" if r.started_at else "",
            f"{r.finished_at:%Y-%m-%d %H:%M:%S}" if r.finished_at else "",
            (r.error or "")[:80],
        )
    console.print(table)
    for r in latest:
        if r.status == "running" and attempts.get(r.id):
            console.print(f"run {r.id}: {holder_state(attempts[r.id][-1])}")
    if chosen is not None and attempts.get(chosen.id):
        console.print(attempts_table(chosen, attempts[chosen.id]))
    for r in latest[:1]:
        for namespace, reason in (r.counts.get("unavailable_metafields") or {}).items():
            console.print(f"run {r.id}: metafields of {namespace} unavailable ({reason})")
    if live:
        console.print(
            f"live: run {live.get('run_id')} phase {live.get('phase')} lines {live.get('lines')}"
            f"/{live.get('expected_lines')} rows {live.get('rows')}"
        )


@app.command("verify")
def verify(
    ctx: typer.Context,
    shop: ShopOption,
    sample: Annotated[int, typer.Option(min=1, max=100_000, help="Products to compare")] = 100,
) -> None:
    """Compare a deterministic sample of stored products with Shopify, field by field."""
    report = run(run_verify(settings_from(ctx), shop_domain(shop), sample))
    if not report.matches:
        raise typer.Exit(1)


async def run_verify(settings: Settings, domain: str, sample: int) -> ParityReport:
    services = resolve_services(settings)
    async with open_resources(settings, services, concurrency=1) as resources:
        shop_id = await installed_shop_id(resources.runtime.pool, domain)
        client = await resources.sync.shops.admin_client(shop_id)
        owners = (
            await resources.sync.owner_apps.owner_apps(shop_id) if resources.sync.owner_apps else []
        )
        report = await verify_sample(
            resources.runtime.pool,
            client,
            shop_id,
            sample,
            owner_namespaces=tuple(o.namespace for o in owners),
        )
    print_parity(report)
    return report


def print_parity(report: ParityReport) -> None:
    verdict = "[green]matches[/green]" if report.matches else "[red]differs[/red]"
    console.print(
        f"parity: {report.compared}/{report.sampled} products compared, "
        f"{len(report.differences)} differences: {verdict}"
    )
    for d in report.differences[:50]:
        console.print(
            f"  product {d.shopify_id} {d.field}: stored {d.stored!r} != shopify {d.shopify!r}"
        )


__all__ = ["PHASES", "app"]
