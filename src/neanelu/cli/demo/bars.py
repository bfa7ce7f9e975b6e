"""The demo's progress bars (the full sync's phases, the embedding run): one look for both."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from neanelu.cli.common import console


def progress_bars() -> Progress:
    """The demo's bars: what, how far, done of total, and the rate (a `rate` field per task)."""
    return Progress(
        TextColumn("{task.description:<20}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>18}"),
        console=console,
    )
