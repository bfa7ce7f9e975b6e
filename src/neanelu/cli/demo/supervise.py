"""The demo's processes: the Shopify emulator, the API and a worker started as children on the
resolved servers, watched while the scenario runs and stopped whatever happens; the worker's peak
memory; and the embedded servers the demo itself started (stopped at the end unless `--keep`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from neanelu.cli.common import console, err_console
from neanelu.config import Settings
from neanelu.db.embedded import (
    EmbeddedServiceError,
    postgres_running,
    redis_running,
    stop_postgres,
    stop_redis,
)
from neanelu.db.services import ServiceUrls

SHOP = "demo"
DOMAIN = f"{SHOP}.myshopify.com"


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and why."""


@dataclass
class Processes:
    """The processes the demo started, stopped in reverse order whatever happens."""

    started: list[tuple[str, subprocess.Popen[str]]] = field(default_factory=list)

    def start(
        self, name: str, args: list[str], env: dict[str, str], log: Path
    ) -> subprocess.Popen[str]:
        with log.open("w", encoding="utf-8") as out:
            proc = subprocess.Popen(
                args,
                env=env,
                # The emulator says on its first line of stdout that it listens.
                stdout=subprocess.PIPE if name == "emulator" else out,
                stderr=out,
                text=True,
            )
        self.started.append((name, proc))
        return proc

    def pid(self, name: str) -> int:
        return next(p.pid for n, p in self.started if n == name)

    def all_alive(self) -> bool:
        return all(p.poll() is None for _, p in self.started)

    def check_alive(self) -> None:
        for name, proc in self.started:
            if proc.poll() is not None:
                raise DemoFailed(f"the {name} process exited with code {proc.returncode}")

    def stop(self) -> None:
        for _, proc in reversed(self.started):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.started):
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the started processes answer."""

    emulator_url: str
    api_url: str
    api_metrics_port: int
    worker_metrics_port: int


class PeakRss:
    """The worker's resident memory and its children's (a large inventory file is ingested by a
    child), sampled every 100 ms on a thread until `stop`."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                total = self.process.memory_info().rss
                for child in self.process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        total += child.memory_info().rss
                self.peak = max(self.peak, total)
            time.sleep(0.1)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) a process has used, with its live children and the children
    it has waited for (the emulator's writer processes, the worker's inventory child)."""
    process = psutil.Process(pid)
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            child_times = child.cpu_times()
            total += child_times.user + child_times.system
    return float(total)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env(
    settings: Settings, services: ServiceUrls, emulator_url: str, api_url: str
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        NEANELU_MODE="local",
        NEANELU_DATA_DIR=str(settings.data_dir.resolve()),
        POSTGRES_URL=services.postgres_app,
        POSTGRES_OWNER_URL=services.postgres_owner,
        REDIS_URL=services.redis,
        SHOPIFY_API_KEY=settings.shopify_api_key,
        SHOPIFY_API_SECRET=settings.shopify_api_secret.get_secret_value(),
        SHOPIFY_BASE_URL=emulator_url,
        APP_HOST=api_url,
    )
    env.pop("SHOPIFY_API_SECRET_PREVIOUS", None)
    return env


def start_processes(
    procs: Processes, settings: Settings, services: ServiceUrls, products: int, logs: Path
) -> Endpoints:
    """The emulator with a `products`-product store (started and listening first: the API and
    the worker call it), then the API and one worker, each with its metrics on a port of its own."""
    emulator_port, api_port = free_port(), free_port()
    emulator_url, api_url = f"http://127.0.0.1:{emulator_port}", f"http://127.0.0.1:{api_port}"
    env = child_env(settings, services, emulator_url, api_url)
    emulator = procs.start(
        "emulator",
        [
            sys.executable,
            "-m",
            "shopify_emulator",
            "--shops",
            f"{SHOP}:{products}",
            "--port",
            str(emulator_port),
            "--client-id",
            settings.shopify_api_key,
            "--client-secret",
            settings.shopify_api_secret.get_secret_value(),
            "--bulk-dir",
            str((settings.data_dir / "emulator-bulk").resolve()),
            "--time-scale",
            "0.01",
        ],
        env,
        logs / "emulator.log",
    )
    assert emulator.stdout is not None  # started with stdout=PIPE above
    line = emulator.stdout.readline()
    if "listening" not in line:
        raise DemoFailed(f"the emulator did not start (see {logs}/emulator.log): {line.strip()}")
    api_metrics_port = free_port()
    procs.start(
        "api",
        [
            sys.executable,
            "-m",
            "neanelu",
            "serve",
            "--port",
            str(api_port),
            "--log-level",
            "warning",
        ],
        {**env, "API_METRICS_PORT": str(api_metrics_port)},
        logs / "api.log",
    )
    worker_metrics_port = free_port()
    procs.start(
        "worker",
        [sys.executable, "-m", "neanelu", "worker"],
        {**env, "METRICS_PORT": str(worker_metrics_port)},
        logs / "worker.log",
    )
    return Endpoints(emulator_url, api_url, api_metrics_port, worker_metrics_port)


async def wait_for(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float, procs: Processes
) -> None:
    """Until `check` holds; fails as soon as a started process has exited, or at `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        procs.check_alive()
        if await check():
            return
        if time.monotonic() > deadline:
            raise DemoFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass(frozen=True, slots=True)
class EmbeddedServers:
    """Which embedded servers the demo itself starts (configured URLs and servers already
    running before it are not the demo's to stop)."""

    postgres: bool
    redis: bool

    @classmethod
    def before_start(cls, settings: Settings) -> EmbeddedServers:
        data_dir = settings.data_dir
        return cls(
            postgres=not settings.postgres_url and not postgres_running(data_dir),
            redis=not settings.redis_url and not redis_running(data_dir),
        )

    def finish(self, settings: Settings, keep: bool) -> None:
        """Stop what the demo started, or with `keep` say what still runs and how to stop it."""
        data_dir = settings.data_dir
        running = [
            name
            for name, up in (
                ("PostgreSQL", not settings.postgres_url and postgres_running(data_dir)),
                ("Redis", not settings.redis_url and redis_running(data_dir)),
            )
            if up
        ]
        if keep:
            if running:
                console.print(
                    f"still running: the embedded {' and '.join(running)} in {data_dir} "
                    "(`neanelu db down` or `make db-down` stops them)"
                )
            return
        started = {"PostgreSQL": self.postgres, "Redis": self.redis}
        stops = {"PostgreSQL": stop_postgres, "Redis": stop_redis}
        stopped = []
        for name in running:
            if not started[name]:
                continue
            try:
                stops[name](data_dir)
                stopped.append(name)
            except EmbeddedServiceError as exc:
                err_console.print(f"[red]could not stop the embedded {name}: {exc}[/red]")
        if stopped:
            console.print(f"stopped the embedded {' and '.join(stopped)} the demo started")
        left = [name for name in running if not started[name]]
        if left:
            console.print(
                f"left running: the embedded {' and '.join(left)} in {data_dir}, running before "
                "the demo (`neanelu db down` stops them)"
            )
