"""`neanelu emulator`: the Shopify emulator, run as its own process (neanelu never imports it)."""

from __future__ import annotations

import os
import sys

import typer

app = typer.Typer(
    help="Run the Shopify emulator; options are the emulator's own (see --help).",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)


@app.callback(invoke_without_command=True)
def emulator(ctx: typer.Context) -> None:
    # exec: signals and exit codes go straight to the emulator, with no wrapper in between.
    os.execv(sys.executable, [sys.executable, "-m", "shopify_emulator", *ctx.args])  # noqa: S606
