"""Full-sync ingest against the emulator, compared with PostgreSQL's own COPY ceiling.

PRODUCTS (default 100,000) products, ~3 variants and ~2 metafields each, from an emulator running in
its own process at full speed. Timed: first downloaded byte -> last merge commit. Ceiling, in the
same run: a server-side `COPY FROM` file of the same final rows into the same empty tables with the
same indexes. Last line: ratio_to_copy_ceiling=... peak_rss_mb=... products_per_s=... rows_per_s=...
and the CPU seconds of both (`cpu_ratio`: the ceiling's over the ingest's), which a loaded machine
does not skew as it skews the wall clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psycopg

from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, EmbeddedPostgres, start_postgres
from neanelu.db.pool import PoolSizes, create_pool, tenant_scope
from neanelu.shopify.graphql import AdminClient, ShopEndpoint
from neanelu.sync.service import SyncDeps, request_full_sync, run_sync

ROOT = Path(__file__).resolve().parents[1]
PRODUCTS = int(os.environ.get("PRODUCTS", "100000"))
SHOP = "bench"
TABLES = ("products", "variants", "inventory_levels")


class PeakRss:
    """Samples the resident memory of this process plus its descendants (the sync's inventory
    process), leaving out the emulator and every process it forks (its export writers), in a
    thread (the event loop stays undisturbed). Also keeps each process's own peak.

    Reads only this process tree from /proc (Linux, as the sync's child needs): psutil's
    `children()` reads every process's stat file on the machine, and two such scans every 50 ms
    (about 270 processes when other builds run) took a third of this process's CPU samples,
    holding the GIL the sync's event loop needs; the bench measured its own sampler."""

    def __init__(self, exclude: int) -> None:
        self.exclude = exclude
        self.peak = 0
        self.peaks: dict[str, int] = {}
        self._names: dict[int, str] = {}
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        own = os.getpid()
        self._names[own] = "sync"
        while not self._stop.is_set():
            total = 0
            for pid in self._ours(own):
                rss = self._rss(pid)
                if rss is not None:
                    total += rss
                    self._keep(pid, rss)
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def _ours(self, root: int) -> list[int]:
        """`root` and its descendants, by the kernel's per-thread lists of children, without
        descending into the emulator."""
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            with contextlib.suppress(OSError):
                for task in os.listdir(f"/proc/{pid}/task"):
                    with contextlib.suppress(OSError):
                        children = Path(f"/proc/{pid}/task/{task}/children").read_text()
                        todo += [int(c) for c in children.split() if int(c) != self.exclude]
        return found

    def _rss(self, pid: int) -> int | None:
        try:
            return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page
        except (OSError, IndexError, ValueError):
            return None  # exited between the listing and the read

    def _keep(self, pid: int, rss: int) -> None:
        name = self._names.get(pid)
        if name is None:
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                return
            self._names[pid] = name
        self.peaks[name] = max(self.peaks.get(name, 0), rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _ticks(pid: int | str) -> tuple[int, int]:
    """A process's own CPU ticks and those of its reaped children (0, 0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, 0
    # After the name: state is field 3, utime/stime 14/15, cutime/cstime 16/17 (man proc).
    return int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def server_cpu(pg: EmbeddedPostgres) -> float:
    """CPU seconds the whole PostgreSQL server has used so far: the postmaster, its live
    processes (backends, writers), and those it has reaped (their time is in its children's)."""
    postmaster = (pg.data_dir / "postmaster.pid").read_text().split()[0]
    own, reaped = _ticks(postmaster)
    total = own + reaped
    for task in os.listdir(f"/proc/{postmaster}/task"):
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{postmaster}/task/{task}/children").read_text().split():
                total += _ticks(child)[0]
    return total / os.sysconf("SC_CLK_TCK")


def python_cpu() -> float:
    """CPU seconds of this process and its reaped children (the inventory process)."""
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class Access:
    def __init__(self, base_url: str, http: httpx.AsyncClient) -> None:
        self.base_url, self.http, self.token = base_url, http, ""

    async def admin_client(self, shop_id: object) -> AdminClient:
        if not self.token:
            r = await self.http.post(f"{self.base_url}/_emulator/shops/{SHOP}/tokens", json={})
            r.raise_for_status()
            self.token = r.json()["access_token"]
        endpoint = ShopEndpoint(f"{SHOP}.myshopify.com", "2026-01", self.base_url)
        return AdminClient(self.http, endpoint, self.token)


def fresh_database(pg: EmbeddedPostgres, name: str) -> None:
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    # In a process of its own: alembic and SQLAlchemy (about 20 MB resident) are the bench's
    # tooling, not the sync's, and would otherwise count in this process's peak RSS.
    subprocess.run([sys.executable, "-c", _MIGRATE, pg.url(OWNER_ROLE, name), APP_ROLE], check=True)
    # Autovacuum of the freshly loaded tables would land in the ceiling's window (the ingest's
    # tables reach its thresholds as the ceiling starts) and in the ingest's: neither is the
    # work measured, and both windows read the server's CPU.
    with psycopg.connect(pg.url(database=name), autocommit=True) as conn:
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")


_MIGRATE = "import sys; from neanelu.db import migrate; migrate.upgrade(sys.argv[1], sys.argv[2])"


def start_emulator(bulk_dir: str) -> tuple[subprocess.Popen[str], str]:
    port = 18787 + os.getpid() % 1000
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopify_emulator",
            "--shops",
            f"{SHOP}:{PRODUCTS}",
            "--port",
            str(port),
            "--bulk-dir",
            bulk_dir,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening" not in line:
        proc.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}"


async def ingest(
    pg: EmbeddedPostgres, base_url: str, emulator_pid: int
) -> tuple[float, dict[str, int], int, float]:
    pool = create_pool(pg.url(APP_ROLE, "bench_ingest"), PoolSizes(1, 6), name="bench-ingest")
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn, conn.transaction():
            # As an install creates it (the application role inserts no shops row itself).
            cur = await conn.execute(
                "SELECT shop_id FROM app_ensure_shop(%s)", (f"{SHOP}.myshopify.com",)
            )
            row = await cur.fetchone()
            assert row is not None
            shop_id = row[0]
        async with tenant_scope(pool, shop_id) as conn:
            run = await request_full_sync(conn, shop_id)
        async with httpx.AsyncClient(timeout=120) as http:
            deps = SyncDeps(pool, http, Access(base_url, http))
            with PeakRss(exclude=emulator_pid) as rss:
                cpu = server_cpu(pg), python_cpu()
                summary = await run_sync(deps, shop_id, run.id)
                finished = time.perf_counter()
                # From the bulk queries to the statistics refresh: a little more than the timed
                # window, never less.
                cpu = server_cpu(pg) - cpu[0], python_cpu() - cpu[1]
        assert summary.first_byte_at is not None
        assert summary.merged_at is not None
        counts = {
            "products": summary.products,
            "variants": summary.variants,
            "inventory_levels": summary.inventory_levels,
        }
        for phase, progress in summary.phases.items():
            print(
                f"  {phase:<20} lines={progress.lines:>10,} rows={progress.rows:>10,} "
                f"bytes={progress.bytes:>13,} seconds={progress.seconds:7.2f}"
            )
        # The window: first downloaded byte -> last merge commit (products and variants are
        # analyzed before the settle of variant quantities, inside it). The statistics refresh
        # that follows is reported apart (the ceiling's COPY does not analyze either).
        print(f"  statistics refresh after the merges: {finished - summary.merged_at:.2f} s")
        peaks = ", ".join(f"{name} {rss / 2**20:.1f}" for name, rss in rss.peaks.items())
        print(f"  peak RSS by process (MiB): {peaks}")
        print(f"  CPU seconds: PostgreSQL {cpu[0]:.1f}, Python (sync and its child) {cpu[1]:.1f}")
        return summary.merged_at - summary.first_byte_at, counts, rss.peak, sum(cpu)
    finally:
        await pool.close()


def copy_ceiling(pg: EmbeddedPostgres) -> tuple[float, float]:
    """Dump the final rows, then time COPY FROM those files into empty, identically indexed
    tables: seconds and the server's CPU seconds."""
    dump_dir = Path(tempfile.mkdtemp(prefix="neanelu-ceiling-"))
    dump_dir.chmod(0o777)
    with psycopg.connect(pg.url(database="bench_ingest"), autocommit=True) as conn:
        for table in ("shops", *TABLES):
            conn.execute(f"COPY {table} TO '{dump_dir / table}.copy'")
    fresh_database(pg, "bench_ceiling")
    with psycopg.connect(pg.url(database="bench_ceiling"), autocommit=True) as conn:
        conn.execute(f"COPY shops FROM '{dump_dir / 'shops'}.copy'")
        conn.execute("CHECKPOINT")
        started, cpu = time.perf_counter(), server_cpu(pg)
        for table in TABLES:
            conn.execute(f"COPY {table} FROM '{dump_dir / table}.copy'")
        elapsed, cpu = time.perf_counter() - started, server_cpu(pg) - cpu
    for file in dump_dir.iterdir():
        file.unlink()
    dump_dir.rmdir()
    return elapsed, cpu


def main() -> None:
    pg = start_postgres(ROOT / ".data")
    fresh_database(pg, "bench_ingest")
    bulk_dir = tempfile.mkdtemp(prefix="neanelu-bulk-")
    emulator, base_url = start_emulator(bulk_dir)
    try:
        print(f"ingesting {PRODUCTS:,} products from {base_url}")
        seconds, counts, peak, cpu = asyncio.run(ingest(pg, base_url, emulator.pid))
    finally:
        emulator.terminate()
        try:
            emulator.wait(10)
        except subprocess.TimeoutExpired:
            # A loaded machine can take longer to stop it; the figures are in hand either way.
            emulator.kill()
            emulator.wait()
        # The emulator removes its export files as it stops; the folder is this bench's.
        shutil.rmtree(bulk_dir, ignore_errors=True)
    with psycopg.connect(pg.url(database="bench_ingest"), autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    ceiling, ceiling_cpu = copy_ceiling(pg)
    rows = sum(counts.values())
    print(f"ingest {seconds:.2f} s for {counts}; COPY ceiling {ceiling:.2f} s")
    print(
        f"ratio_to_copy_ceiling={ceiling / seconds:.3f} peak_rss_mb={peak / 2**20:.1f} "
        f"products_per_s={counts['products'] / seconds:.0f} rows_per_s={rows / seconds:.0f} "
        f"products={counts['products']} ingest_s={seconds:.2f} ceiling_s={ceiling:.2f} "
        f"cpu_ratio={ceiling_cpu / cpu:.3f} ingest_cpu_s={cpu:.1f} ceiling_cpu_s={ceiling_cpu:.1f}"
    )


if __name__ == "__main__":
    main()
