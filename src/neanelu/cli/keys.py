"""`neanelu keys rotate`: re-seal every stored token under ENCRYPTION_KEY_256."""

from __future__ import annotations

import typer

from neanelu.cli.common import console, err_console, open_cli_runtime, run, settings_from
from neanelu.config import Settings
from neanelu.shops.key_rotation import RotationReport, rotate_keys
from neanelu.vault import TokenVault

app = typer.Typer(help="Token encryption keys.", no_args_is_help=True)


async def _rotate(settings: Settings) -> RotationReport:
    async with open_cli_runtime(settings, name="neanelu-keys", pool_max=2) as rt:
        return await rotate_keys(rt.pool, rt.vault)


@app.command()
def rotate(ctx: typer.Context) -> None:
    """Re-encrypt every token with the newest key; old keys stay listed in
    ENCRYPTION_KEYS_PREVIOUS until this reports no failures."""
    settings = settings_from(ctx)
    try:
        vault = TokenVault.from_settings(settings)
    except ValueError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    report = run(_rotate(settings))
    console.print(
        f"re-sealed {report.resealed} shop(s) and {report.owner_apps_resealed} owner app "
        f"token(s) under key {vault.current_key_id}; {report.failed} failed"
    )
    if report.failed:
        raise typer.Exit(1)
