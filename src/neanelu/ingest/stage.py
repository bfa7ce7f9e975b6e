"""Bytes -> lines -> rows -> binary COPY into a phase's staging table.

Python decodes while PostgreSQL parses and stores on the other core: rows go out through COPY as
they are built, so neither side waits for a whole file, and memory holds one download chunk plus
COPY's write buffer whatever the file's size.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from neanelu.db.pool import Conn
from neanelu.ingest.evidence import named_ids, variants_side
from neanelu.ingest.quarantine import QuarantineSink
from neanelu.ingest.queries import Phase
from neanelu.ingest.rows import BUILDERS, COLUMNS, NUL_ESCAPE, RowBuilder, refusal, refuse_nul

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
    # Ids named by bad lines, kept from the sweeps (ingest/evidence.py), and bad lines naming none.
    protected: int = 0
    unidentified: int = 0


ProgressCallback = Callable[[PhaseStats], Awaitable[None]]


Block = bytes | bytearray | memoryview
Sink = Callable[[tuple[Any, ...]], None]


@dataclass(slots=True)
class _Lines:
    """Lines -> rows handed to `sink` (which formats them into COPY blocks), synchronously: no
    await per line. Bad lines are collected for the quarantine, written after each chunk."""

    build: RowBuilder
    sink: Sink
    line_no: int = 0
    offset: int = 0
    rows: int = 0
    bad: list[tuple[int, int, str, bytes]] = field(default_factory=list)

    def feed(self, lines: list[bytes], *, nul: bool = True) -> None:
        """`nul`: the block these lines came from holds `NUL_ESCAPE`, so each line is checked."""
        build, sink = self.build, self.sink
        line_no, offset, rows = self.line_no, self.offset, self.rows
        for line in lines:
            line_no += 1
            start = offset
            offset += len(line) + 1
            if not line:
                continue
            try:
                if nul:
                    refuse_nul(line)
                row = build(line, line_no, start)
            except (ValueError, RecursionError) as exc:
                # Whatever is wrong with a line (msgspec's refusals, bytes that are not UTF-8,
                # a `BadLine` from a builder), it is quarantined, never the end of the sync.
                self.bad.append((line_no, start, refusal(line, exc), line))
                continue
            if row is not None:
                rows += 1
                sink(row)
        self.line_no, self.offset, self.rows = line_no, offset, rows

    def feed_last(self, tail: bytes) -> bool:
        """The file ended without a newline: a cut-off last line is bad (True), a whole one kept."""
        bad_before = len(self.bad)
        self.feed([tail])
        if len(self.bad) > bad_before:
            line_no, start, reason, line = self.bad[-1]
            self.bad[-1] = (line_no, start, f"last line: {reason}", line)
            return True
        return False


# Where a row's kind ('P' product, 'V' variant) sits: core rows lead with it, metafield rows
# (line_no, byte_offset, owner_kind, ...) carry their owner's third.
_KIND_AT = {Phase.CORE: 0, Phase.METAFIELDS: 2, Phase.VARIANT_METAFIELDS: 2}


def _sinks(
    phase: Phase, formats: Sequence[Callable[[Sequence[Any]], Block]], outs: list[list[Block]]
) -> Sink:
    """One COPY stream takes every row; two split products (first) from variants (second), and
    core products also leave their id with the variants, for the orphan check there."""
    if len(formats) == 1:
        (fmt,), (out,) = formats, outs

        def single(row: tuple[Any, ...]) -> None:
            if block := fmt(row):
                out.append(block)

        return single
    (fmt_p, fmt_v), (out_p, out_v) = formats, outs
    at = _KIND_AT[phase]
    id_only = (None,) * (len(COLUMNS[Phase.CORE][1]) - 4)
    core = phase is Phase.CORE

    def split(row: tuple[Any, ...]) -> None:
        if row[at] == "P":
            if block := fmt_p(row):
                out_p.append(block)
            if not core:
                return
            row = row[:4] + id_only
        if block := fmt_v(row):
            out_v.append(block)

    return split


@dataclass(frozen=True, slots=True)
class StageOptions:
    """How one file is staged: the bad-line share allowed (of `expected_lines` while it streams,
    of the lines read at the end), progress every `progress_every` lines, the row builder (the
    phase's own by default) and, for catalog files, the session variants go to."""

    max_bad_share: float
    expected_lines: int = 0
    on_progress: ProgressCallback | None = None
    progress_every: int = 200_000
    build: RowBuilder | None = None
    variants_to: Conn | None = None


async def stage_phase(
    conn: Conn,
    phase: Phase,
    chunks: AsyncIterator[bytes],
    quarantine: QuarantineSink,
    options: StageOptions,
) -> PhaseStats:
    """COPY every good line of one bulk file into the phase's staging table (which must exist),
    each line made a row by `options.build`. With `options.variants_to`, catalog rows are split:
    products into `conn`'s staging, variants (and the ids of the core file's products) into that
    session's, so that the two merge side by side."""
    max_bad_share, expected_lines = options.max_bad_share, options.expected_lines
    on_progress, progress_every = options.on_progress, options.progress_every
    build, variants_to = options.build, options.variants_to
    table, columns, types = COLUMNS[phase]
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    stats = PhaseStats(phase)
    # Fail early once bad lines exceed the share of what the file will hold, not only at the end.
    bad_limit = int(max_bad_share * expected_lines) if expected_lines else None
    next_report = progress_every
    tail = b""
    sessions = [conn] if variants_to is None else [conn, variants_to]
    outs: list[list[Block]] = [[] for _ in sessions]

    async with contextlib.AsyncExitStack() as stack:
        copies = []
        for session in sessions:
            cur = await stack.enter_async_context(session.cursor())
            copy = await stack.enter_async_context(cur.copy(statement))
            copy.set_types(list(types))
            copies.append(copy)
        # psycopg's formatter buffers rows and hands back a block when its buffer is full
        # (what copy.write_row does, minus a coroutine per row).
        formats = [copy.formatter.write_row for copy in copies]
        state = _Lines(build or BUILDERS[phase](), _sinks(phase, formats, outs))
        protected: set[tuple[str, int]] = set()

        async def drain() -> None:
            for copy, out in zip(copies, outs, strict=True):
                for block in out:
                    await copy.write(block)
                out.clear()
            for line_no, start, reason, line in state.bad:
                await quarantine.add(line_no, start, reason, line)
                named = named_ids(phase, line)
                protected.update(named)
                stats.unidentified += not named
                if bad_limit is not None and quarantine.count > bad_limit:
                    raise TooManyBadLines(_too_many(phase, quarantine.count, line_no))
            state.bad.clear()

        async for chunk in chunks:
            stats.bytes += len(chunk)
            block = tail + chunk if tail else chunk
            lines = block.split(b"\n")
            tail = lines.pop()
            state.feed(lines, nul=NUL_ESCAPE in block)
            await drain()
            if state.line_no >= next_report and on_progress is not None:
                stats.lines, stats.rows = state.line_no, state.rows
                stats.bad_lines = quarantine.count
                await on_progress(stats)
                next_report = state.line_no + progress_every
        if tail:
            stats.truncated = state.feed_last(tail)
            await drain()
    await _protect(sessions, protected)
    stats.protected = len(protected)
    await quarantine.flush()
    stats.lines, stats.rows, stats.bad_lines = state.line_no, state.rows, quarantine.count
    if stats.lines and stats.bad_lines > max_bad_share * stats.lines:
        raise TooManyBadLines(_too_many(phase, stats.bad_lines, stats.lines))
    if on_progress is not None:
        await on_progress(stats)
    return stats


async def _protect(sessions: list[Conn], protected: set[tuple[str, int]]) -> None:
    """Ids named by bad lines into `stg_protected` of the session that sweeps their table."""
    sides: list[list[tuple[str, int]]] = [[] for _ in sessions]
    for kind, number in protected:
        sides[min(variants_side(kind), len(sessions) - 1)].append((kind, number))
    for session, ids in zip(sessions, sides, strict=True):
        if ids:
            kinds, numbers = zip(*ids, strict=True)
            await session.execute(
                "INSERT INTO stg_protected (kind, shopify_id)"
                " SELECT * FROM unnest(%s::text[], %s::int8[]) ON CONFLICT DO NOTHING",
                (list(kinds), list(numbers)),
            )


def _too_many(phase: Phase, bad: int, lines: int) -> str:
    return f"{phase.value}: {bad} bad lines of {lines} read exceed the allowed share"
