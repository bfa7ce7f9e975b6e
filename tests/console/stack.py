"""A real deployment for the browser tests: the emulator, `neanelu serve` and `neanelu worker` as
processes on the test database and a Redis of their own, with one shop installed through the
real OAuth flow (which queues its first full sync)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from neanelu.shops.merchant_install import install_as_merchant
from tests.databases import TestDatabase
from tests.service.support import CLIENT_ID, SECRET

SHOP = "console"
DOMAIN = f"{SHOP}.myshopify.com"
PRODUCTS = 1500
# Slow enough that a full sync lasts several seconds, so the page can be seen following it.
BULK_LINES_PER_S = 1500


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@dataclass
class Stack:
    database: TestDatabase
    redis_url: str
    logs: Path
    emulator_url: str = ""
    api_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as out:
            proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-2000:]
                raise AssertionError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def control(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response = httpx.request(
            method,
            f"{self.emulator_url}/_emulator/shops/{SHOP}{path}",
            timeout=10,
            **kw,
        )
        response.raise_for_status()
        return response

    def sql(self, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """As the owner, in the installed shop's tenant scope (RLS holds for the owner too)."""
        with psycopg.connect(self.database.owner_url, autocommit=True) as conn:
            row = conn.execute("SELECT id FROM shops WHERE domain = %s", (DOMAIN,)).fetchone()
            if row is not None:
                conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(row[0]),))
            return conn.execute(query, params).fetchall()

    @property
    def shop_id(self) -> str:
        return str(self.sql("SELECT id FROM shops WHERE domain = %s", (DOMAIN,))[0][0])

    def runs(self) -> list[tuple[object, ...]]:
        return self.sql("SELECT id, status, phase FROM sync_runs ORDER BY created_at")

    def _install(self) -> None:
        async def install() -> None:
            async with httpx.AsyncClient(timeout=10) as browser:
                await install_as_merchant(
                    browser, app_url=self.api_url, shopify_url=self.emulator_url, domain=DOMAIN
                )

        # On a thread of its own: Playwright's sync API may keep an event loop on this one.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, install()).result()

    def create_operator(self, username: str, password: str) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "neanelu", "admin", "create-user", "--username", username],
            env={**self.env, "NEANELU_ADMIN_PASSWORD": password},
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@contextmanager
def running_stack(database: TestDatabase, redis_url: str, logs: Path) -> Iterator[Stack]:
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(database, redis_url, logs)
    emulator_port, api_port = free_port(), free_port()
    stack.emulator_url = f"http://127.0.0.1:{emulator_port}"
    stack.api_url = f"http://127.0.0.1:{api_port}"
    stack.env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "REDIS_"))},
        "NEANELU_MODE": "local",
        "POSTGRES_URL": database.app_url,
        "POSTGRES_OWNER_URL": database.owner_url,
        "REDIS_URL": redis_url,
        "SHOPIFY_API_KEY": CLIENT_ID,
        "SHOPIFY_API_SECRET": SECRET,
        "SHOPIFY_BASE_URL": stack.emulator_url,
        "APP_HOST": stack.api_url,
        "API_METRICS_PORT": "0",
        "METRICS_PORT": "0",
        "OTEL_SDK_DISABLED": "true",
        "LOG_FORMAT": "json",
    }
    try:
        stack.start(
            "emulator",
            [
                sys.executable,
                "-m",
                "shopify_emulator",
                "--shops",
                f"{SHOP}:{PRODUCTS}",
                "--port",
                str(emulator_port),
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                SECRET,
                "--bulk-dir",
                str(logs / "bulk"),
                "--time-scale",
                "0.01",
                "--bulk-lines-per-s",
                str(BULK_LINES_PER_S),
            ],
            stack.env,
        )
        stack.start(
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
            stack.env,
        )
        stack.start("worker", [sys.executable, "-m", "neanelu", "worker"], stack.env)

        def up(url: str) -> bool:
            stack.check_alive()
            try:
                return httpx.get(url, timeout=2).status_code < 500
            except httpx.HTTPError:
                return False

        wait_for(lambda: up(f"{stack.emulator_url}/_emulator/health"), "the emulator")
        wait_for(lambda: up(f"{stack.api_url}/admin/login"), "neanelu serve")
        stack._install()

        def first_sync_done() -> bool:
            stack.check_alive()
            return any(status == "completed" for _, status, _ in stack.runs())

        wait_for(first_sync_done, "the install's first full sync", timeout=240)
        yield stack
    finally:
        stack.stop()
