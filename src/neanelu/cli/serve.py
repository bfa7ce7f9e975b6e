"""`neanelu serve`: the HTTP service on uvicorn."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from neanelu.cli.common import console, settings_from
from neanelu.db.services import redact_url, resolve_services
from neanelu.web.app import create_app
from neanelu.web.server import GuardedConfig, HttpLimits, run_server

app = typer.Typer(help="Run the HTTP service (OAuth, webhooks, read API, health).")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes")] = 1,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    settings = settings_from(ctx)
    services = resolve_services(settings)
    console.print(
        f"neanelu serve on http://{host}:{port} "
        f"(postgres {redact_url(services.postgres_app)}, redis {redact_url(services.redis)})"
    )
    limits = HttpLimits.from_settings(settings)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "access_log": False,
        "log_config": None,  # uvicorn logs through the JSON pipeline set up by the app
    }
    if workers > 1 or reload:
        # Separate processes build their own settings and pools from the environment.
        config = GuardedConfig(
            "neanelu.web.asgi:app_factory",
            limits=limits,
            factory=True,
            workers=workers,
            reload=reload,
            **common,
        )
    else:
        config = GuardedConfig(create_app(settings, services), limits=limits, **common)
    if not run_server(config):
        raise typer.Exit(1)
