"""What the demo found, as one value (`DemoFigures`), its verdict, and the tables it prints: the
full sync by phase, then the stored catalog against the emulated store's own counts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from neanelu.catalog.census import CatalogCounts
from neanelu.cli.common import console
from neanelu.cli.demo.search_step import SearchFigures, freshness_line, search_tables
from neanelu.sync.repository import SyncRun
from neanelu.sync.verify import ParityReport

PHASES = ("core", "metafields", "variant_metafields", "inventory", "merge")


@dataclass(frozen=True, slots=True)
class SyncShare:
    """How much of the full sync was the emulator's: the wall time from the first bulk operation's
    answer to the last one's end (the sync ingests once they are all done), and the CPU seconds
    the emulator (with its writer processes) and the worker (with its children) used meanwhile."""

    sync_s: float
    bulk_s: float
    emulator_cpu_s: float
    worker_cpu_s: float

    @classmethod
    def of(
        cls,
        sync_s: float,
        operations: list[dict[str, Any]],
        emulator_cpu_s: float,
        worker_cpu_s: float,
    ) -> SyncShare:
        started = [float(op["created_s"]) for op in operations]
        ended = [float(op["finished_s"]) for op in operations if op.get("finished_s") is not None]
        bulk_s = max(ended) - min(started) if started and ended else 0.0
        return cls(sync_s, bulk_s, emulator_cpu_s, worker_cpu_s)


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
    share: SyncShare  # the emulator's part of the full sync
    search: SearchFigures  # vectors built, searches shown, a retitled product's freshness

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
        return not self.differing() and self.parity.matches and self.search.ok


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
    share = figures.share
    table.add_row("full sync", "", f"{share.sync_s:,.1f} s", "")
    percent = f" ({100 * share.bulk_s / share.sync_s:.0f} %)" if share.sync_s else ""
    table.add_row("  bulk operations running", f"{share.bulk_s:,.1f} s{percent}", "", "")
    table.add_row(
        "  CPU: emulator / worker",
        f"{share.emulator_cpu_s:,.1f} s",
        f"{share.worker_cpu_s:,.1f} s",
        "",
    )
    table.caption = f"{figures.seconds:.1f} s in all"
    return table


def print_report(figures: DemoFigures) -> None:
    console.print(_phase_table(figures.sync))
    console.print(_summary_table(figures))
    for table in search_tables(figures.search):
        console.print(table)
    console.print(freshness_line(figures.search))
    for d in figures.parity.differences[:20]:
        console.print(
            f"  product {d.shopify_id} {d.field}: stored {d.stored!r} != shopify {d.shopify!r}"
        )
    console.print("[green]demo ok[/green]" if figures.ok else "[red]demo found differences[/red]")
