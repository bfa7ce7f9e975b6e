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
def emulator(
    ctx: typer.Context,
    public_base_url: str = typer.Option(
        "",
        "--public-base-url",
        help="Base of result-file URLs, e.g. https://storage.googleapis.com behind a TLS proxy "
        "(default: the emulator's own http://HOST:PORT).",
    ),
) -> None:
    base = ["--public-base-url", public_base_url] if public_base_url else []
    # exec: signals and exit codes go straight to the emulator, with no wrapper in between.
    os.execv(sys.executable, [sys.executable, "-m", "shopify_emulator", *base, *ctx.args])  # noqa: S606
