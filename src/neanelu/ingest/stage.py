"""Bytes -> lines -> rows -> binary COPY into a phase's staging table.

Python decodes while PostgreSQL parses and stores on the other core: rows go out through COPY as
they are built, so neither side waits for a whole file, and memory holds one download chunk plus
COPY's write buffer whatever the file's size.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import psycopg

from neanelu.db.pool import Conn
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.records import BadLine
from neanelu.ingest.rows import BUILDERS, COLUMNS, RowBuilder

# Staging lives in temp tables, whose pages sit in the session's own buffers: 8 MB by default,
# against gigabytes of staging for a 1M-product shop, so every merge lookup became a read from
# the operating system. Taken only as used; fixed once a session has used temp tables (a pooled
# connection keeps the size its first sync gave it).
STAGING_BUFFERS = "256MB"


async def make_room(conn: Conn) -> None:
    try:
        await conn.execute(f"SET temp_buffers = '{STAGING_BUFFERS}'")
    except psycopg.errors.InvalidParameterValue:
        pass  # this session used temp tables before: it keeps the size it has


class TooManyBadLines(Exception):
    """More bad lines than the configured share allows: the data is not trustworthy."""


@dataclass(slots=True)
class PhaseStats:
    phase: Phase
    lines: int = 0
    rows: int = 0
    bad_lines: int = 0
    bytes: int = 0
    # The file ended inside a line that did not parse: a cut-off download or a truncated file.
    truncated: bool = False


ProgressCallback = Callable[[PhaseStats], Awaitable[None]]


@dataclass(slots=True)
class _Lines:
    """Lines -> formatted COPY blocks, synchronously: no await per line. Bad lines are collected
    for the quarantine, which the caller writes after each chunk."""

    build: RowBuilder
    format_row: Callable[[tuple[object, ...]], bytes | bytearray | memoryview]
    line_no: int = 0
    offset: int = 0
    rows: int = 0
    bad: list[tuple[int, int, str, bytes]] = field(default_factory=list)

    def feed(self, lines: list[bytes], blocks: list[bytes | bytearray | memoryview]) -> None:
        build, format_row = self.build, self.format_row
        line_no, offset, rows = self.line_no, self.offset, self.rows
        for line in lines:
            line_no += 1
            start = offset
            offset += len(line) + 1
            if not line:
                continue
            try:
                row = build(line, line_no, start)
            except BadLine as exc:
                self.bad.append((line_no, start, str(exc), line))
                continue
            if row is not None:
                rows += 1
                if block := format_row(row):
                    blocks.append(block)
        self.line_no, self.offset, self.rows = line_no, offset, rows

    def feed_last(self, tail: bytes, blocks: list[bytes | bytearray | memoryview]) -> bool:
        """The file ended without a newline: a cut-off last line is bad (True), a whole one kept."""
        bad_before = len(self.bad)
        self.feed([tail], blocks)
        if len(self.bad) > bad_before:
            line_no, start, reason, line = self.bad[-1]
            self.bad[-1] = (line_no, start, f"last line: {reason}", line)
            return True
        return False


async def stage_phase(
    conn: Conn,
    phase: Phase,
    chunks: AsyncIterator[bytes],
    quarantine: QuarantineSink,
    *,
    max_bad_share: float,
    expected_lines: int = 0,
    on_progress: ProgressCallback | None = None,
    progress_every: int = 200_000,
    build: RowBuilder | None = None,
) -> PhaseStats:
    """COPY every good line of one bulk file into the phase's staging table (which must exist),
    each line made a row by `build` (the phase's own builder by default)."""
    table, columns, types = COLUMNS[phase]
    stats = PhaseStats(phase)
    # Fail early once bad lines exceed the share of what the file will hold, not only at the end.
    bad_limit = int(max_bad_share * expected_lines) if expected_lines else None
    next_report = progress_every
    tail = b""
    blocks: list[bytes | bytearray | memoryview] = []

    async def drain(state: _Lines) -> None:
        for block in blocks:
            await copy.write(block)
        blocks.clear()
        for line_no, start, reason, line in state.bad:
            await quarantine.add(line_no, start, reason, line)
            if bad_limit is not None and quarantine.count > bad_limit:
                raise TooManyBadLines(_too_many(phase, quarantine.count, line_no))
        state.bad.clear()

    async with conn.cursor() as cur:
        async with cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(list(types))
            # psycopg's formatter buffers rows and hands back a block when its buffer is full
            # (what copy.write_row does, minus a coroutine per row).
            state = _Lines(build or BUILDERS[phase](), copy.formatter.write_row)
            async for chunk in chunks:
                stats.bytes += len(chunk)
                lines = (tail + chunk if tail else chunk).split(b"\n")
                tail = lines.pop()
                state.feed(lines, blocks)
                await drain(state)
                if state.line_no >= next_report and on_progress is not None:
                    stats.lines, stats.rows = state.line_no, state.rows
                    stats.bad_lines = quarantine.count
                    await on_progress(stats)
                    next_report = state.line_no + progress_every
            if tail:
                stats.truncated = state.feed_last(tail, blocks)
                await drain(state)
    await quarantine.flush()
    stats.lines, stats.rows, stats.bad_lines = state.line_no, state.rows, quarantine.count
    if stats.lines and stats.bad_lines > max_bad_share * stats.lines:
        raise TooManyBadLines(_too_many(phase, stats.bad_lines, stats.lines))
    if on_progress is not None:
        await on_progress(stats)
    return stats


def _too_many(phase: Phase, bad: int, lines: int) -> str:
    return f"{phase.value}: {bad} bad lines of {lines} read exceed the allowed share"
