"""What the demo found, as one value (`DemoFigures`), its verdict, and the tables it prints: the
full sync by phase, then the stored catalog against the emulated store's own counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rich.table import Table

from neanelu.catalog.census import CatalogCounts
from neanelu.cli.common import console
from neanelu.sync.repository import SyncRun
from neanelu.sync.verify import ParityReport

PHASES = ("core", "metafields", "variant_metafields", "inventory", "merge")


@dataclass(frozen=True, slots=True)
class DemoFigures:
    sync: SyncRun  # the install's full sync, finished
    peak_rss: int  # bytes, the worker and its children, over the full sync
    throttles: int | None  # THROTTLED and 429 answers the worker met; None: metrics unreadable
    store: CatalogCounts  # the emulator's own counts, after the changes
    stored: CatalogCounts  # what PostgreSQL holds for the shop, after the changes
    webhooks: int  # deliveries in the shop's inbox
    parity: ParityReport
    seconds: float  # the whole demo, servers' start included

    def differing(self) -> list[str]:
        """The counts that differ between the store and PostgreSQL."""
        return [name for name, want, have in self.count_rows() if want != have]

    def count_rows(self) -> list[tuple[str, int, int]]:
        return [
            ("products", self.store.products, self.stored.products),
            ("variants", self.store.variants, self.stored.variants),
            ("metafields", self.store.metafields, self.stored.metafields),
            ("inventory levels", self.store.inventory_levels, self.stored.inventory_levels),
        ]

    @property
    def ok(self) -> bool:
        return not self.differing() and self.parity.matches


@contextmanager
def step(title: str) -> Iterator[None]:
    started = time.perf_counter()
    console.print(f"[bold cyan]>[/bold cyan] {title}")
    yield
    console.print(f"  done in {time.perf_counter() - started:.1f} s")


def _phase_table(run: SyncRun) -> Table:
    counts = run.counts
    phases = Table(title="full sync by phase")
    for column in ("phase", "lines", "rows", "MiB", "seconds", "rows/s"):
        phases.add_column(column, justify="left" if column == "phase" else "right")
    for phase in PHASES:
        rows = int(counts.get(f"{phase}_rows", 0))
        secs = float(counts.get(f"{phase}_seconds", 0.0))
        phases.add_row(
            phase,
            f"{int(counts.get(f'{phase}_lines', 0)):,}",
            f"{rows:,}",
            f"{int(counts.get(f'{phase}_bytes', 0)) / 2**20:,.1f}",
            f"{secs:.2f}",
            f"{rows / secs:,.0f}" if secs else "",
        )
    return phases


def _summary_table(figures: DemoFigures) -> Table:
    table = Table(title="neanelu demo")
    table.add_column("what")
    table.add_column("emulated store", justify="right")
    table.add_column("PostgreSQL", justify="right")
    table.add_column("", justify="center")
    for name, want, have in figures.count_rows():
        mark = "[green]ok[/green]" if want == have else "[red]differs[/red]"
        table.add_row(name, f"{want:,}", f"{have:,}", mark)
    table.add_row("webhooks received", "", f"{figures.webhooks:,}", "")
    table.add_row("worker peak memory", "", f"{figures.peak_rss / 2**20:,.0f} MiB", "")
    table.add_row("sync attempts", "", str(figures.sync.attempts), "")
    throttles = figures.throttles
    table.add_row("throttle events", "", "n/a" if throttles is None else f"{throttles:,}", "")
    parity = figures.parity
    table.add_row(
        "parity sample",
        f"{parity.sampled}",
        f"{len(parity.differences)} differences",
        "[green]ok[/green]" if parity.matches else "[red]differs[/red]",
    )
    table.caption = f"{figures.seconds:.1f} s in all"
    return table


def print_report(figures: DemoFigures) -> None:
    console.print(_phase_table(figures.sync))
    console.print(_summary_table(figures))
    for d in figures.parity.differences[:20]:
        console.print(
            f"  product {d.shopify_id} {d.field}: stored {d.stored!r} != shopify {d.shopify!r}"
        )
    console.print("[green]demo ok[/green]" if figures.ok else "[red]demo found differences[/red]")
