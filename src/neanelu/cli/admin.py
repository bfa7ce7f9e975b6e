"""`neanelu admin ...`: operator accounts for the console at /admin."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from neanelu.cli.common import console, err_console, open_cli_runtime, run, settings_from
from neanelu.config import Settings
from neanelu.db.pool import global_scope
from neanelu.web.console import operators
from neanelu.web.console.passwords import PasswordRejected, check_new

app = typer.Typer(help="Operator accounts for the console at /admin.", no_args_is_help=True)

PASSWORD_ENV = "NEANELU_ADMIN_PASSWORD"  # noqa: S105 - the variable's name, not a password
UserOption = Annotated[str, typer.Option("--username", "-u", help="The operator's sign-in name")]


def _read_password() -> str:
    """From NEANELU_ADMIN_PASSWORD, piped stdin (first line), or a hidden prompt asked twice:
    never a command-line argument, which every user of the machine can read in the process list."""
    value = os.environ.get(PASSWORD_ENV)
    if value is None:
        if sys.stdin.isatty():
            value = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        else:
            value = sys.stdin.readline().rstrip("\r\n")
    try:
        check_new(value)
    except PasswordRejected as exc:
        err_console.print(f"[red]{exc} (from {PASSWORD_ENV}, stdin or the prompt)[/red]")
        raise typer.Exit(2) from None
    return value


async def _create(settings: Settings, username: str, password: str, replace: bool) -> None:
    async with open_cli_runtime(settings, name="neanelu-admin", pool_max=1) as rt:
        async with global_scope(rt.pool) as conn:
            await operators.create(conn, username, password, replace=replace)


async def _disable(settings: Settings, username: str) -> bool:
    async with open_cli_runtime(settings, name="neanelu-admin", pool_max=1) as rt:
        async with global_scope(rt.pool) as conn:
            return await operators.disable(conn, username)


def _username(raw: str) -> str:
    try:
        return operators.check_username(raw)
    except operators.OperatorError as exc:
        err_console.print(f"[red]--username: {exc}[/red]")
        raise typer.Exit(2) from None


@app.command("create-user")
def create_user(
    ctx: typer.Context,
    username: UserOption,
    reset_password: Annotated[
        bool, typer.Option("--reset-password", help="Set a new password for an existing operator")
    ] = False,
) -> None:
    """Create a console operator (password from NEANELU_ADMIN_PASSWORD, stdin or a prompt)."""
    name = _username(username)
    password = _read_password()
    try:
        run(_create(settings_from(ctx), name, password, reset_password))
    except operators.OperatorError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    verb = "password reset for" if reset_password else "created"
    console.print(f"operator {verb} {name}: sign in at /admin")


@app.command("disable-user")
def disable_user(ctx: typer.Context, username: UserOption) -> None:
    """Disable an operator and end their sessions at once."""
    name = _username(username)
    if not run(_disable(settings_from(ctx), name)):
        err_console.print(f"[red]no enabled operator {name}[/red]")
        raise typer.Exit(1)
    console.print(f"operator {name} disabled")
