"""What every command shares: the settings built once, printed errors, the asyncio entry."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from neanelu.config import Settings, SettingsError, load_settings
from neanelu.db.embedded import EmbeddedServiceError

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")


def settings_from(ctx: typer.Context) -> Settings:
    """The settings built once by the root callback."""
    settings = ctx.find_root().obj
    if not isinstance(settings, Settings):
        raise RuntimeError("settings were not built by the root command")
    return settings


def build_settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine; known failures become one red line and exit code 1."""
    try:
        return asyncio.run(coro)
    except EmbeddedServiceError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None


def text_of(value: bytes | str) -> str:
    """A Redis reply as text, whether or not the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value
