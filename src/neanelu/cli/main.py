"""The `neanelu` command."""

from __future__ import annotations

import typer

from neanelu.cli import admin, db, demo, emulator, keys, search, serve, shops, sync, worker
from neanelu.cli.common import build_settings

app = typer.Typer(
    help="neanelu: mirror very large Shopify catalogs into PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold tokens and secrets
)
app.add_typer(db.app, name="db")
app.add_typer(serve.app, name="serve")
app.add_typer(keys.app, name="keys")
app.add_typer(worker.app, name="worker")
app.add_typer(sync.app, name="sync")
app.add_typer(shops.app, name="shops")
emulator.register(app)
app.add_typer(demo.app, name="demo")
search.register(app)
app.add_typer(admin.app, name="admin")


@app.callback()
def root(ctx: typer.Context) -> None:
    """Settings are built once here and passed down to every command."""
    ctx.obj = build_settings()


def main() -> None:
    app()
