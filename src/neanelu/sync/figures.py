"""A phase's figures, once it ended: one frozen value published to every observer.

Each phase of a sync (a file staged, the merges) ends with the same few numbers, and four parties
want them: the live progress (Redis, the CLI's bars), the metrics, the phase's span and the run's
record in `sync_runs` (with the attempt's own summary). Each observer reads what it needs from the
one `PhaseFigures`, so the numbers are taken once and cannot disagree between them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from neanelu import telemetry
from neanelu.db.pool import tenant_scope
from neanelu.sync import repository as runs
from neanelu.sync.progress import PhaseProgress, ProgressReporter

if TYPE_CHECKING:
    from uuid import UUID

    from opentelemetry.trace import Span
    from psycopg_pool import AsyncConnectionPool

    from neanelu.db.pool import Conn
    from neanelu.sync.staging import SyncSummary


@dataclass(frozen=True, slots=True)
class PhaseFigures:
    """What one phase did: its file's lines, the rows they gave, the bytes read, bad lines, and
    how long it took (for the merge: the rows written and the merges' seconds)."""

    phase: str
    lines: int = 0
    rows: int = 0
    bytes: int = 0
    bad_lines: int = 0
    seconds: float = 0.0
    expected_lines: int = 0
    expected_bytes: int = 0
    # A file was read (False: the operation gave no file; nothing is counted in the metrics).
    read: bool = True
    # What the run's record keeps of the phase beyond the common counts (the merge's outcome);
    # empty: the phase's lines, rows, bytes and seconds under its name.
    record: Mapping[str, Any] = field(default_factory=dict)

    def progress(self) -> PhaseProgress:
        return PhaseProgress(
            self.phase,
            lines=self.lines,
            rows=self.rows,
            bytes=self.bytes,
            bad_lines=self.bad_lines,
            expected_lines=self.expected_lines,
            expected_bytes=self.expected_bytes,
            seconds=self.seconds,
            done=True,
        )

    def counts(self) -> dict[str, Any]:
        """The keys this phase adds to the run's `counts`."""
        if self.record:
            return dict(self.record)
        name = self.phase
        return {
            f"{name}_lines": self.lines,
            f"{name}_rows": self.rows,
            f"{name}_bytes": self.bytes,
            f"{name}_seconds": round(self.seconds, 3),
        }


class PhaseObserver(Protocol):
    async def phase_done(self, figures: PhaseFigures) -> None:
        """Take the figures of a phase that ended (called once per phase)."""


async def publish(figures: PhaseFigures, observers: Sequence[PhaseObserver]) -> None:
    for observer in observers:
        await observer.phase_done(figures)


@dataclass(frozen=True, slots=True)
class ToProgress:
    """The phase's last live progress, written whatever the throttle (Redis, listeners)."""

    reporter: ProgressReporter

    async def phase_done(self, figures: PhaseFigures) -> None:
        await self.reporter.update(figures.progress(), force=True)


@dataclass(frozen=True, slots=True)
class ToMetrics:
    """The ingest counters and histograms of this process (a child's die with it: its figures
    are published here by the parent)."""

    async def phase_done(self, figures: PhaseFigures) -> None:
        if not figures.read:
            return
        # Looked up when used: neanelu.telemetry loads its metrics module (prometheus_client)
        # on first use, which the inventory's child process never makes.
        m = telemetry.current_metrics()
        name = figures.phase
        m.ingest_lines.labels(name).inc(figures.lines)
        m.ingest_rows.labels(name).inc(figures.rows)
        m.ingest_bytes.labels(name).inc(figures.bytes)
        m.ingest_bad_lines.labels(name).inc(figures.bad_lines)
        m.ingest_phase_seconds.labels(name).observe(figures.seconds)
        if figures.seconds > 0:
            m.ingest_rows_per_second.labels(name).set(figures.rows / figures.seconds)


@dataclass(frozen=True, slots=True)
class ToSpan:
    """The phase's own span (download, decode, stitch and COPY share it)."""

    span: Span

    async def phase_done(self, figures: PhaseFigures) -> None:
        self.span.set_attributes(
            {
                "neanelu.phase": figures.phase,
                "neanelu.bytes": figures.bytes,
                "neanelu.lines": figures.lines,
                "neanelu.rows": figures.rows,
                "neanelu.bad_lines": figures.bad_lines,
            }
        )


@dataclass(frozen=True, slots=True)
class ToRun:
    """The attempt's summary and the run's record: `counts` gains the phase's keys, `bytes` and
    `bad_lines` the totals of the files this process read so far."""

    pool: AsyncConnectionPool[Conn]
    shop_id: UUID
    run_id: UUID
    summary: SyncSummary

    async def phase_done(self, figures: PhaseFigures) -> None:
        summary = self.summary
        summary.phases[figures.phase] = figures.progress()
        if not figures.record:  # a file's phase (the merge's bad lines are the files')
            summary.bad_lines += figures.bad_lines
            summary.download_seconds += figures.seconds if figures.read else 0.0
        read = sum(p.bytes for p in summary.phases.values() if p.phase != "merge")
        async with tenant_scope(self.pool, self.shop_id) as side:
            await runs.record_progress(
                side, self.run_id, figures.phase, figures.counts(), read, summary.bad_lines
            )
