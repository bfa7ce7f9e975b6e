"""The `neanelu` command's entry point. `neanelu worker --check`, the container's health probe,
answers from `neanelu.probe` without importing the rest of the command line (seconds on a loaded
host, against the probe's 10 s timeout); every other command goes to the Typer app."""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["worker", "--check"]:
        from neanelu.config import SettingsError, load_settings
        from neanelu.probe import run_check

        try:
            settings = load_settings()
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            raise SystemExit(2) from None
        raise SystemExit(run_check(settings))
    from neanelu.cli.main import main as full_command_line

    full_command_line()
