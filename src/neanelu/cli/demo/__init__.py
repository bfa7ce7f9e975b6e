"""`neanelu demo`: the whole chain on embedded defaults, for real, start to finish.

Embedded PostgreSQL and Redis, the Shopify emulator with a 100k-product store, the API and a worker
as their own processes (`supervise`); the app is installed through the real OAuth endpoints, the
full sync runs on the queue with a progress bar per phase, catalog changes arrive as webhooks, a
parity check compares a sample field by field (`scenario`); and a summary table reports what
happened (`report`).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass
from typing import Annotated

import httpx
import typer

from neanelu.cli.common import console, err_console, settings_from
from neanelu.cli.demo.report import DemoFigures, print_report, step
from neanelu.cli.demo.scenario import Scenario, forget_previous_demo
from neanelu.cli.demo.supervise import (
    SHOP,
    DemoFailed,
    EmbeddedServers,
    Endpoints,
    Processes,
    start_processes,
    wait_for,
)
from neanelu.config import Settings
from neanelu.db import migrate
from neanelu.db.services import resolve_services
from neanelu.worker.resources import open_resources

app = typer.Typer(help="Run the whole system on an emulated store, end to end.")


READY_TIMEOUT_S = 180.0


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    code: int  # the process's exit code: 0 when every check held
    figures: DemoFigures | None  # None when a step failed before the report


async def _wait_ready(endpoints: Endpoints, procs: Processes) -> None:
    async with httpx.AsyncClient(timeout=10) as probe:

        async def ready() -> bool:
            try:
                answer = await probe.get(f"{endpoints.api_url}/health/ready")
            except httpx.TransportError:
                return False
            return answer.status_code == 200

        # Seconds when idle; minutes seen on a 2-core machine shared with builds (load 12).
        await wait_for(ready, "the API to be ready", READY_TIMEOUT_S, procs)


async def run_demo(settings: Settings, products: int, keep: bool) -> DemoOutcome:
    logs = (settings.data_dir / "demo-logs").resolve()
    logs.mkdir(parents=True, exist_ok=True)
    procs = Processes()
    started = time.perf_counter()
    servers = EmbeddedServers.before_start(settings)
    try:
        with step("Starting embedded PostgreSQL 18 + pgvector and Redis, migrating"):
            services = await asyncio.to_thread(resolve_services, settings)
            await asyncio.to_thread(migrate.upgrade, services.postgres_owner, services.app_role)
        with step(f"Starting the Shopify emulator ({products:,} products), the API and a worker"):
            endpoints = start_processes(procs, settings, services, products, logs)
            await _wait_ready(endpoints, procs)
        # This process talks to the emulator too (parity check), as the API and worker do.
        local = settings.model_copy(
            update={"shopify_base_url": endpoints.emulator_url, "app_host": endpoints.api_url}
        )
        async with open_resources(local, services, concurrency=2) as res:
            if await forget_previous_demo(services.postgres_owner):
                console.print("  removed the previous demo shop (the emulator starts fresh)")
            # A fresh connection per call: the emulator closes a keep-alive connection idle for
            # 5 s, and a request sent as it does is reset (seen on a loaded machine, mid-changes).
            no_reuse = httpx.Limits(max_keepalive_connections=0)
            async with httpx.AsyncClient(timeout=60, limits=no_reuse) as http:
                figures = await Scenario(procs, endpoints, http, res).run(started)
        print_report(figures)
        if keep and figures.ok:
            await _keep_running(endpoints, procs)
        return DemoOutcome(0 if figures.ok else 1, figures)
    except DemoFailed as exc:
        err_console.print(f"[red]demo failed: {exc}[/red] (logs in {logs})")
        return DemoOutcome(1, None)
    finally:
        procs.stop()
        await asyncio.to_thread(servers.finish, settings, keep)


async def _keep_running(endpoints: Endpoints, procs: Processes) -> None:
    # The loop's own handler, set before the prompt: asyncio.run's default one only cancels the
    # main task at its next await, so a blocking wait here needed a second Ctrl-C.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    console.print(
        f"API docs     {endpoints.api_url}/docs\n"
        f"API metrics  http://127.0.0.1:{endpoints.api_metrics_port}/metrics\n"
        f"emulator     {endpoints.emulator_url}/_emulator/shops/{SHOP}\n"
        "Ctrl-C stops the API, the worker and the emulator; PostgreSQL and Redis stay up."
    )
    try:
        while not stop.is_set() and procs.all_alive():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


@app.callback(invoke_without_command=True)
def demo(
    ctx: typer.Context,
    products: Annotated[
        int,
        typer.Option(envvar="DEMO_PRODUCTS", min=10, max=5_000_000, help="Products in the store"),
    ] = 100_000,
    keep: Annotated[
        bool, typer.Option("--keep", help="Leave everything running afterwards")
    ] = False,
) -> None:
    outcome = asyncio.run(run_demo(settings_from(ctx), products, keep))
    raise typer.Exit(outcome.code)


__all__ = ["DemoOutcome", "app", "run_demo"]
