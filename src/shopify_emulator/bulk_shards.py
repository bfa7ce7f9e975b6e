"""A big bulk export written by several processes, one contiguous range of products each.

Generating JSONL is pure Python and CPU-bound, so one process tops out at one core. For an export of the
whole catalog in id order (the full syncs every client runs) the bulk thread forks one child per
worker; each child inherits the catalog and the compiled plan, writes the lines of its product range to
its own part file and reports its counts through a pipe, so `objectCount` keeps growing while the parts
are written. The result is the parts in range order, which is the order one writer would have used;
they are served in sequence rather than joined (the join copied about a gigabyte after the writers had
finished: 3.2 of a 1M export's 13.6 s).
A child touches nothing but the generator, the plan and its own file: no event loop, no locks.
"""

from __future__ import annotations

import os
import select
import signal
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from shopify_emulator import bulk_plan, ids
from shopify_emulator.context import Context

REPORT = struct.Struct("<qqqq")  # lines, root lines, bytes, done (1) / failed (-1) / running (0)
FLUSH_BYTES = 1 << 20
# Buffers one writev may take (Linux's IOV_MAX).
IOV_MAX = 1024
# Roots whose objects belong to one product each, with the cursor that resumes after product `i`.
_RESUME: dict[str, Callable[[int], int]] = {
    "products": lambda i: ids.PRODUCT_BASE + i,
    "productVariants": lambda i: ids.variant_id(i, ids.VARIANT_SLOTS - 1),
    "inventoryItems": lambda i: ids.inventory_item_id(i, ids.VARIANT_SLOTS - 1),
}


def product_index_of(obj: Any) -> int:
    index = getattr(obj, "index", None)
    if index is None:
        variant = getattr(obj, "variant", obj)
        index = variant.product_index
    return int(index)


def shardable(plan: bulk_plan.BulkPlan) -> bool:
    """Whole-catalog, id-ordered roots only: their order is the product range order."""
    args = plan.root.args
    root = plan.root_field
    return root in _RESUME and not any(args.get(k) for k in ("query", "sortKey", "reverse"))


@dataclass(slots=True)
class Shard:
    start: int
    end: int
    path: str
    pid: int = 0
    read_fd: int = -1
    lines: int = 0
    roots: int = 0
    size: int = 0
    state: int = 0


def ranges(upper: int, workers: int) -> list[tuple[int, int]]:
    step = -(-upper // workers)
    return [(a, min(upper, a + step)) for a in range(0, upper, step)]


def shard_lines(
    plan: bulk_plan.BulkPlan, ctx: Context, order: str, seed: int, start: int, end: int
) -> Iterator[bulk_plan.Group]:
    """The line groups of products [start, end), as one writer would produce them."""
    groups = bulk_plan.product_groups(plan, ctx, order, start, end)
    if groups is None:
        after = -1 if start == 0 else _RESUME[plan.root_field](start - 1)

        def bounded() -> Iterator[Any]:
            for _, obj in plan.root.source(None, plan.root.args, ctx, after):
                if product_index_of(obj) >= end:
                    return
                yield obj

        groups = bulk_plan.object_groups(plan, ctx, order, bounded())
    return bulk_plan.root_lines(plan, ctx, order, seed, groups)


class GroupWriter:
    """Line groups to a file, about a megabyte per `writev`: each group is joined once and goes to the
    kernel from there (a buffer the groups were copied into, grown and freed a megabyte at a time,
    cost a copy and the page faults of fresh memory per megabyte)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.pending: list[bytes] = []
        self.pending_size = 0
        self.size = 0  # bytes written so far

    def add(self, group: list[bytes]) -> bool:
        """Queue a group; True when this wrote the queue out."""
        joined = b"".join(group)
        self.pending.append(joined)
        self.pending_size += len(joined)
        if self.pending_size >= FLUSH_BYTES or len(self.pending) >= IOV_MAX:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        written = os.writev(self.fd, self.pending) if self.pending else 0
        if written < self.pending_size:
            # A short write (a signal, a full disk): the rest the plain way, which raises if it must.
            rest = memoryview(b"".join(self.pending))[written:]
            while rest:
                rest = rest[os.write(self.fd, rest) :]
        self.size += self.pending_size
        self.pending.clear()
        self.pending_size = 0


def _child(shard: Shard, write_fd: int, lines: Iterator[bulk_plan.Group]) -> None:
    count = roots = 0
    with open(shard.path, "wb") as out:
        writer = GroupWriter(out.fileno())
        for group, group_roots in lines:
            count += len(group)
            roots += group_roots
            if writer.add(group):
                os.write(write_fd, REPORT.pack(count, roots, writer.size, 0))
        writer.flush()
    os.write(write_fd, REPORT.pack(count, roots, writer.size, 1))


def detach(keep: int) -> None:
    """Close every descriptor a child inherited but `keep` and the standard streams.

    A fork shares the parent's sockets: while a child held a copy, a connection the server closed (a
    keep-alive timeout, `Connection: close`) stayed open to its client, which then sent requests nobody
    read and got an EOF instead of an answer once the child exited.
    """
    if not os.path.isdir("/proc/self/fd"):
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                continue  # the directory listing's own descriptor, already gone


def run(
    plan: bulk_plan.BulkPlan,
    ctx: Context,
    order: str,
    seed: int,
    path: str,
    workers: int,
    progress: Callable[[int, int], None],
    cancelled: Callable[[], bool],
) -> tuple[int, tuple[str, ...]]:
    """Write the export to `path` with `workers` processes; returns the size of the whole result and
    the part files that follow `path` in it. `progress` gets (lines, root lines) so far; when
    `cancelled()` turns true the children are stopped."""
    # The first range is written straight into the result file; the others to parts beside it.
    shards = [
        Shard(start=a, end=b, path=path if n == 0 else f"{path}.part{n}")
        for n, (a, b) in enumerate(ranges(ctx.catalog.upper, workers))
    ]
    complete = False
    try:
        for n, shard in enumerate(shards):
            lines = shard_lines(plan, ctx, order, seed * 31 + n, shard.start, shard.end)
            read_fd, write_fd = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child, which leaves through os._exit
                detach(keep=write_fd)
                status = 1
                try:
                    _child(shard, write_fd, lines)
                    status = 0
                except BaseException:
                    os.write(write_fd, REPORT.pack(0, 0, 0, -1))
                finally:
                    os._exit(status)
            os.close(write_fd)
            shard.pid, shard.read_fd = pid, read_fd
        _collect(shards, progress, cancelled)
        if cancelled():
            return 0, ()
        if any(s.state != 1 for s in shards):
            raise RuntimeError("a bulk writer process failed")
        complete = True
        return sum(s.size for s in shards), tuple(s.path for s in shards[1:])
    finally:
        for shard in shards:
            if shard.pid and shard.state == 0:
                os.kill(shard.pid, signal.SIGKILL)
            if shard.pid:
                os.waitpid(shard.pid, 0)
            if shard.read_fd >= 0:
                os.close(shard.read_fd)
            if not complete and shard.path != path and os.path.exists(shard.path):
                os.unlink(shard.path)


def _collect(
    shards: list[Shard], progress: Callable[[int, int], None], cancelled: Callable[[], bool]
) -> None:
    pending = {s.read_fd: s for s in shards}
    partial: dict[int, bytes] = {fd: b"" for fd in pending}
    while pending and not cancelled():
        ready, _, _ = select.select(list(pending), [], [], 0.2)
        for fd in ready:
            shard = pending[fd]
            data = os.read(fd, 4096)
            if not data:
                # The child is gone without saying it finished.
                shard.state = shard.state or -1
                del pending[fd]
                continue
            buffered = partial[fd] + data
            usable = len(buffered) - len(buffered) % REPORT.size
            for offset in range(0, usable, REPORT.size):
                shard.lines, shard.roots, shard.size, state = REPORT.unpack_from(buffered, offset)
                if state:
                    shard.state = state
            partial[fd] = buffered[usable:]
            if shard.state:
                del pending[fd]
        progress(sum(s.lines for s in shards), sum(s.roots for s in shards))
