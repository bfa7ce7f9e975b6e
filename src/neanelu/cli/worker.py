"""`neanelu worker`: run the queues; `--check` is the container's health probe."""

from __future__ import annotations

from typing import Annotated

import typer

from neanelu.cli.common import console, err_console, run, settings_from
from neanelu.db.services import redact_url, resolve_services
from neanelu.probe import run_check
from neanelu.queue import QUEUE_NAMES
from neanelu.worker.main import serve_worker

app = typer.Typer(help="Run background jobs (syncs, webhooks) from the Redis queues.")


@app.callback(invoke_without_command=True)
def worker(
    ctx: typer.Context,
    queues: Annotated[
        str,
        typer.Option(help=f"Comma-separated queues to take jobs from ({', '.join(QUEUE_NAMES)})"),
    ] = ",".join(QUEUE_NAMES),
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=1000, help="Jobs at once (default WORKER_CONCURRENCY)")
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check", help="Exit 0 when Redis answers and a worker loop here is alive"),
    ] = False,
) -> None:
    settings = settings_from(ctx)
    if check:
        # `neanelu worker --check` alone takes a lighter path (cli/entry.py); this one serves the
        # same probe when options come with it.
        raise typer.Exit(run_check(settings))
    chosen = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(chosen) - set(QUEUE_NAMES))
    if unknown or not chosen:
        err_console.print(f"[red]unknown queue(s): {', '.join(unknown) or '(none given)'}[/red]")
        raise typer.Exit(2)
    services = resolve_services(settings)
    slots = concurrency or settings.worker_concurrency
    console.print(
        f"neanelu worker on {', '.join(chosen)} with {slots} slots "
        f"(postgres {redact_url(services.postgres_app)}, redis {redact_url(services.redis)})"
    )
    run(serve_worker(settings, services, queues=chosen, concurrency=slots))
