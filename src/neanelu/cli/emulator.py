"""`neanelu emulator`: the Shopify emulator, run as its own process (neanelu never imports it)."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

# A plain command, not a sub-app: a sub-app is a group, which reads the first argument as a
# subcommand name and so refused `--help` and `--shops ...`. Every argument, `--help` included,
# belongs to the emulator's own parser.
CONTEXT_SETTINGS: dict[str, Any] = {"allow_extra_args": True, "ignore_unknown_options": True}


def emulator(ctx: typer.Context) -> None:
    """Run the Shopify emulator; options are the emulator's own (neanelu emulator --help)."""
    # exec: signals and exit codes go straight to the emulator, with no wrapper in between.
    os.execv(sys.executable, [sys.executable, "-m", "shopify_emulator", *ctx.args])  # noqa: S606


def register(app: typer.Typer) -> None:
    app.command("emulator", context_settings=CONTEXT_SETTINGS, add_help_option=False)(emulator)
