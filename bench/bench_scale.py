"""The cost curve of a full sync: the same ingest benchmark at growing catalog sizes.

    SIZES=100000,300000,1000000,3000000 python bench/bench_scale.py

Each size runs `bench/bench_ingest.py` in a process of its own (a fresh interpreter, so one size's
memory cannot flatter or burden the next), on the same embedded PostgreSQL, and reads back its
figures; the database size is that of the synced database right after the run. Time should grow
linearly with the catalog and memory not at all. Last line: the sizes, then for the largest size
against the one before it `time_ratio` and `rss_ratio` (and `time_ratio_3m_1m`, `rss_ratio_3m_1m`
when both of those sizes ran), with the products ratio beside them for reference.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

from neanelu.db.embedded import start_postgres

ROOT = Path(__file__).resolve().parents[1]
SIZES = [int(s) for s in os.environ.get("SIZES", "100000,300000,1000000,3000000").split(",")]


@dataclass(frozen=True, slots=True)
class Point:
    products: int
    seconds: float
    rows_per_s: float
    peak_rss_mb: float
    database_mb: float
    ratio_to_copy_ceiling: float


def _figures(last_line: str) -> dict[str, str]:
    pairs = dict(item.split("=", 1) for item in last_line.split() if "=" in item)
    for key in ("ingest_s", "rows_per_s", "peak_rss_mb", "ratio_to_copy_ceiling"):
        if key not in pairs:
            raise SystemExit(f"bench_ingest's last line has no {key}: {last_line!r}")
    return pairs


def run_size(products: int) -> Point:
    print(f"-- {products:,} products", flush=True)
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_ingest.py")],
        env={**os.environ, "PRODUCTS": str(products)},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = out.strip().splitlines()
    for line in lines[:-1]:
        print(f"   {line}")
    figures = _figures(lines[-1])
    pg = start_postgres(ROOT / ".data")
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT pg_database_size('bench_ingest')").fetchone()
    assert found is not None
    return Point(
        products,
        float(figures["ingest_s"]),
        float(figures["rows_per_s"]),
        float(figures["peak_rss_mb"]),
        int(found[0]) / 2**20,
        float(figures["ratio_to_copy_ceiling"]),
    )


def main() -> None:
    if not SIZES or any(n <= 0 for n in SIZES):
        raise SystemExit("SIZES must be a comma-separated list of positive product counts")
    points = [run_size(n) for n in sorted(SIZES)]
    print()
    print("| products | seconds | rows/s | peak RSS (MB) | database (MB) | ratio to COPY |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for p in points:
        print(
            f"| {p.products:,} | {p.seconds:.1f} | {p.rows_per_s:,.0f} | {p.peak_rss_mb:.0f} "
            f"| {p.database_mb:,.0f} | {p.ratio_to_copy_ceiling:.3f} |"
        )
    by_size = {p.products: p for p in points}
    tail = [f"sizes={','.join(str(p.products) for p in points)}"]
    if len(points) >= 2:
        big, prev = points[-1], points[-2]
        tail += [
            f"products_ratio={big.products / prev.products:.2f}",
            f"time_ratio={big.seconds / prev.seconds:.2f}",
            f"rss_ratio={big.peak_rss_mb / prev.peak_rss_mb:.2f}",
        ]
    if 1_000_000 in by_size and 3_000_000 in by_size:
        m1, m3 = by_size[1_000_000], by_size[3_000_000]
        tail += [
            f"time_ratio_3m_1m={m3.seconds / m1.seconds:.2f}",
            f"rss_ratio_3m_1m={m3.peak_rss_mb / m1.peak_rss_mb:.2f}",
        ]
    tail.append(f"peak_rss_mb_max={max(p.peak_rss_mb for p in points):.0f}")
    print(" ".join(tail))


if __name__ == "__main__":
    main()
