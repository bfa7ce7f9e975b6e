"""Benchmark: a full bulk export of PRODUCTS products (default 1,000,000) from the emulator, then a
date-windowed export of about 1% of them.

Starts `python -m shopify_emulator` as a subprocess, runs the core bulk query over HTTP, polls it, downloads
the file, checks its line count against objectCount, and samples the emulator's peak RSS and the peak
PSS of the emulator with its writer processes; `lines_per_cpu_s` divides the lines by the CPU seconds the
emulator and its writers used (what the export costs whatever else the machine runs). Then it picks the `updated_at` window holding ~1% of the products (from the
file it just read) and times the same query filtered to it. The last line is
`lines_per_s=... lines_per_cpu_s=... export_cpu_s=... export_sys_s=... peak_rss_mb=... peak_tree_pss_mb=... serve_mb_per_s=... lines=... object_count=... window_lines=...
window_s=... window_speedup=...`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

import httpx
import psutil

PRODUCTS = int(os.environ.get("PRODUCTS", "1000000"))
SHOP = "bench"
CORE_QUERY = (
    "{ products { edges { node { id handle title vendor productType status tags descriptionHtml createdAt "
    "updatedAt variants { edges { node { id sku title price compareAtPrice barcode position inventoryQuantity "
    "createdAt updatedAt inventoryItem { id } selectedOptions { name value } } } } } } } }"
)
RUN = "mutation($q: String!) { bulkOperationRunQuery(query: $q, groupObjects: false) { bulkOperation { id } userErrors { message } } }"
POLL = "query($id: ID!) { bulkOperation(id: $id) { status errorCode objectCount rootObjectCount fileSize url } }"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RssSampler(threading.Thread):
    """Peak memory of the emulator: its own RSS, and the PSS of it with the writer processes it forks
    (PSS splits the pages a fork shares with its parent, so nothing is counted twice)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = 0
        self.peak_tree = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.process.memory_info().rss)
                total = 0
                for process in [self.process, *self.process.children(recursive=True)]:
                    try:
                        total += process.memory_full_info().pss
                    except psutil.Error:
                        continue
                self.peak_tree = max(self.peak_tree, total)
            except psutil.Error:
                return
            time.sleep(0.1)


def cpu_seconds(process: psutil.Process) -> tuple[float, float]:
    """(user, system) CPU time of the emulator and of the writer processes it has waited for."""
    times = process.cpu_times()
    return float(times.user + times.children_user), float(times.system + times.children_system)


def export(client: httpx.Client, query: str, poll_s: float = 0.1) -> tuple[dict[str, Any], float]:
    """Run a bulk query and poll it to the end: (final operation, seconds from request to end)."""
    url = "/admin/api/2026-01/graphql.json"
    started = time.monotonic()
    run = client.post(url, json={"query": RUN, "variables": {"q": query}}).json()
    op_id = run["data"]["bulkOperationRunQuery"]["bulkOperation"]["id"]
    while True:
        op = client.post(url, json={"query": POLL, "variables": {"id": op_id}}).json()["data"][
            "bulkOperation"
        ]
        if op["status"] not in ("CREATED", "RUNNING"):
            break
        time.sleep(poll_s)
    elapsed = time.monotonic() - started
    if op["status"] != "COMPLETED":
        raise SystemExit(f"bulk operation ended {op}")
    return op, elapsed


def collect_stamps(data: bytes, stamps: list[str]) -> bytes:
    """Add the updatedAt of every product line in `data`; return the unfinished last line."""
    cut = data.rfind(b"\n") + 1
    for line in data[:cut].split(b"\n"):
        if b'"__typename":"Product"' in line and b"__parentId" not in line:
            start = line.find(b'"updatedAt":"') + 13
            stamps.append(line[start : start + 20].decode())
    return data[cut:]


def main() -> int:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shopify_emulator",
            "--shops",
            f"{SHOP}:{PRODUCTS}",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        print(proc.stdout.readline().strip(), file=sys.stderr)
        sampler = RssSampler(proc.pid)
        sampler.start()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(
            base_url=base, headers={"Host": f"{SHOP}.myshopify.com"}, timeout=60
        ) as client:
            token = client.post(f"/_emulator/shops/{SHOP}/tokens", json={}).json()["access_token"]
            # Ready means indexed: the timestamp index a big shop builds at startup is not export work.
            while client.get("/_emulator/health").json()["indexing"]:
                time.sleep(0.2)
            client.headers["X-Shopify-Access-Token"] = token
            emulator = psutil.Process(proc.pid)
            cpu_before = cpu_seconds(emulator)
            op, export_s = export(client, CORE_QUERY)
            cpu_after = cpu_seconds(emulator)
            export_user_s = cpu_after[0] - cpu_before[0]
            export_sys_s = cpu_after[1] - cpu_before[1]
            export_cpu_s = export_user_s + export_sys_s
            object_count = int(op["objectCount"])
            lines = 0
            size = 0
            stamps: list[str] = []
            started = time.monotonic()
            tail = b""
            with httpx.stream("GET", op["url"], timeout=120) as response:
                for chunk in response.iter_raw(1 << 20):
                    lines += chunk.count(b"\n")
                    size += len(chunk)
                    tail = collect_stamps(tail + chunk, stamps)
            serve_s = time.monotonic() - started
            stamps.sort()
            # The updated_at window holding ~1% of the products, in the middle of the catalog's history.
            low, high = stamps[len(stamps) // 2], stamps[len(stamps) // 2 + len(stamps) // 100]
            windowed = CORE_QUERY.replace(
                "{ products {",
                f'{{ products(query: "updated_at:>={low} updated_at:<={high}") {{',
                1,
            )
            window_op, window_s = export(client, windowed, poll_s=0.01)
        sampler.running = False
        sampler.join()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"products={PRODUCTS} export_s={export_s:.1f} file_mb={size / 1e6:.1f} root_objects={op['rootObjectCount']}",
        file=sys.stderr,
    )
    if lines != object_count or size != int(op["fileSize"]):
        print(
            f"MISMATCH lines={lines} object_count={object_count} size={size} fileSize={op['fileSize']}"
        )
        return 1
    print(
        f"lines_per_s={object_count / export_s:.0f} lines_per_cpu_s={object_count / export_cpu_s:.0f} "
        f"export_cpu_s={export_cpu_s:.1f} export_sys_s={export_sys_s:.1f} peak_rss_mb={sampler.peak / 1e6:.1f} "
        f"peak_tree_pss_mb={sampler.peak_tree / 1e6:.1f} "
        f"serve_mb_per_s={size / 1e6 / serve_s:.0f} lines={lines} object_count={object_count} "
        f"window_lines={window_op['objectCount']} window_roots={window_op['rootObjectCount']} "
        f"window_s={window_s:.2f} window_speedup={export_s / window_s:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
