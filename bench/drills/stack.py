"""A whole installation as real processes on real servers, for the drills.

The embedded PostgreSQL 18 and Redis (AOF on) under `.data/drills`, a fresh migrated database per
drill, the Shopify emulator (`python -m shopify_emulator`), the API (`neanelu serve`) and N workers
(`neanelu worker`), each a process with its log in the drill's run directory. Shops are installed
through OAuth against the emulator, as a merchant would, and their first full syncs are queued by
the install itself. Every process can be killed, restarted or replaced while the drill runs.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from neanelu.db import migrate
from neanelu.db.embedded import (
    APP_ROLE,
    OWNER_ROLE,
    EmbeddedPostgres,
    EmbeddedRedis,
    restart_postgres,
    restart_redis,
    start_postgres,
    start_redis,
)
from neanelu.shops.merchant_install import InstallFailed, install_as_merchant

ROOT = Path(__file__).resolve().parents[2]
# Servers of their own (a drill restarts and empties them); DRILL_DATA_DIR runs two at once.
DATA = Path(os.environ.get("DRILL_DATA_DIR") or ROOT / ".data" / "drills").resolve()
CLIENT_ID = "drill-client-id"
# A process's start-up on a machine shared with other builds (load average 30 on 2 cores seen):
# the API took over 60 s to answer, which is the machine, not a failure of the drill.
STARTUP_TIMEOUT_S = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float, every: float = 0.5
) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise DrillFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(every)


class DrillFailed(AssertionError):
    """A drill's expectation that did not hold, with what was seen."""


@dataclass
class Proc:
    """One process of the stack: started, signalled, restarted; its output appended to its log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        out = self.log.open("ab")
        out.write(f"--- start {self.starts} at {time.time():.3f}\n".encode())
        out.flush()
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
        out.close()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 30) -> None:
        if self.popen is None:
            return
        if self.alive:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        else:
            self.popen.wait()

    def rss_kib(self) -> int:
        """Resident memory of the process and its children (a sync's inventory child)."""
        import psutil

        proc = psutil.Process(self.pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total // 1024

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@dataclass
class StackConfig:
    name: str
    shops: int = 3
    products: int = 300
    workers: int = 2
    concurrency: int = 4
    seed: int = 1
    plan: str = "plus"
    # Webhook retries wait 56 s * 2^(k-1) * time_scale: 0.005 spreads 8 retries over ~70 s, long
    # enough for a restarted API to come back before Shopify gives up on a delivery.
    time_scale: float = 0.005
    env: dict[str, str] = field(default_factory=dict)
    emulator_args: list[str] = field(default_factory=list)
    api_workers: int = 1


@dataclass
class Shop:
    name: str
    domain: str
    products: int
    id: str = ""


@dataclass
class Stack:
    config: StackConfig
    run_dir: Path
    pg: EmbeddedPostgres
    redis: EmbeddedRedis
    database: str
    secret: str
    encryption_key: str
    emulator_url: str
    api_url: str
    env: dict[str, str]
    emulator: Proc
    api: Proc
    workers: list[Proc]
    shops: list[Shop]
    http: httpx.AsyncClient

    # -- urls ---------------------------------------------------------------------------------

    @property
    def super_url(self) -> str:
        """A superuser sees every shop's rows (row-level security does not bind it): the checks."""
        return self.pg.url("postgres", self.database)

    @property
    def processes(self) -> list[Proc]:
        return [self.emulator, self.api, *self.workers]

    async def control(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.http.request(method, f"{self.emulator_url}/_emulator{path}", **kw)
        r.raise_for_status()
        return r.json() if r.content else None

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.super_url, autocommit=True) as conn:
            cur = await conn.execute(sql, params)
            return list(await cur.fetchall()) if cur.description is not None else []

    # -- servers ------------------------------------------------------------------------------

    def restart_postgres(self, mode: str) -> None:
        restart_postgres(self.pg, mode=mode)

    def restart_redis(self, *, lose_data: bool = False) -> None:
        self.redis = restart_redis(DATA, lose_data=lose_data)

    # -- processes ----------------------------------------------------------------------------

    def add_worker(self) -> Proc:
        n = len(self.workers)
        proc = Proc(
            f"worker-{n}",
            [
                str(ROOT / ".venv/bin/neanelu"),
                "worker",
                "--concurrency",
                str(self.config.concurrency),
            ],
            self.env,
            self.run_dir / f"worker-{n}.log",
        )
        proc.start()
        self.workers.append(proc)
        return proc

    async def wait_api(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        async def ready() -> bool:
            if not self.api.alive:
                raise DrillFailed(f"the API exited: see {self.api.log}")
            try:
                r = await self.http.get(f"{self.api_url}/health/ready", timeout=2)
            except httpx.HTTPError:
                return False
            return r.status_code == 200

        await eventually(ready, "the API to be ready", timeout, every=0.2)

    async def restart_api(self, down_s: float = 0.0) -> None:
        self.api.stop()
        await asyncio.sleep(down_s)
        self.api.start()
        await self.wait_api()

    # -- shops --------------------------------------------------------------------------------

    async def install(self, shop: Shop, browser: httpx.AsyncClient) -> str:
        """The merchant's OAuth round trip: install, the emulator's authorize page, the callback."""
        try:
            installed = await install_as_merchant(
                browser, app_url=self.api_url, shopify_url=self.emulator_url, domain=shop.domain
            )
        except InstallFailed as exc:
            raise DrillFailed(f"install of {shop.domain}: {exc}") from None
        shop.id = str(installed.shop_id)
        return shop.id

    async def install_all(self, shops: Sequence[Shop] | None = None, parallel: int = 8) -> float:
        """Installs every shop (`parallel` merchants at once); returns the seconds it took."""
        todo = list(shops if shops is not None else self.shops)
        gate = asyncio.Semaphore(parallel)
        started = time.perf_counter()

        async def one(shop: Shop) -> None:
            async with gate, httpx.AsyncClient(timeout=30, follow_redirects=False) as browser:
                await self.install(shop, browser)

        await asyncio.gather(*(one(s) for s in todo))
        await self.wait_subscribed(todo)
        return time.perf_counter() - started

    async def wait_subscribed(self, shops: Sequence[Shop], timeout: float = 300) -> None:
        """An install is whole once a worker has subscribed the shop's topics: changes made
        before that send no webhook (the first sync's snapshot may predate them too; the hourly
        reconciliation is what catches those), so a drill's traffic starts after it."""
        from neanelu.shops.tasks import WEBHOOK_TOPICS

        async def subscribed() -> bool:
            for shop in shops:
                subs = await self.control("GET", f"/shops/{shop.name}/webhooks/subscriptions")
                if len(subs) < len(WEBHOOK_TOPICS):
                    return False
            return True

        await eventually(subscribed, "webhook subscriptions of every shop", timeout)

    async def add_shops(self, count: int, products: int) -> list[Shop]:
        """More shops on the running emulator (the load's install wave)."""
        added = []
        base = len(self.shops)
        for i in range(base, base + count):
            name = f"{self.config.name.replace('_', '-')}-s{i}"
            await self.control(
                "POST",
                "/shops",
                json={
                    "name": name,
                    "products": products,
                    "seed": self.config.seed * 1000 + i,
                    "plan": self.config.plan,
                },
            )
            shop = Shop(name, f"{name}.myshopify.com", products)
            self.shops.append(shop)
            added.append(shop)
        return added

    # -- teardown -----------------------------------------------------------------------------

    async def close(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        await self.http.aclose()

    def drop_database(self) -> None:
        with psycopg.connect(self.pg.url(database="postgres"), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {self.database} WITH (FORCE)")


def _fresh_database(pg: EmbeddedPostgres, name: str) -> None:
    with psycopg.connect(pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}")
    migrate.upgrade(pg.url(OWNER_ROLE, name), APP_ROLE)


def _fresh_run_dir(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    for old in run_dir.glob("*.log"):
        old.unlink()


async def open_stack(config: StackConfig, run_dir: Path) -> Stack:
    """Servers, a fresh database, the emulator, the API and the workers; shops not yet installed."""
    _fresh_run_dir(run_dir)
    pg = start_postgres(DATA)
    redis = start_redis(DATA)
    import redis as redis_sync

    client = redis_sync.Redis(unix_socket_path=str(redis.socket_path))
    client.flushall()  # a drill starts from empty books
    client.close()
    database = f"drill_{config.name}"
    _fresh_database(pg, database)

    secret = secrets.token_hex(24)
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    emulator_port, api_port = free_port(), free_port()
    emulator_url = f"http://127.0.0.1:{emulator_port}"
    api_url = f"http://127.0.0.1:{api_port}"
    shops = [
        Shop(
            f"{config.name.replace('_', '-')}-s{i}",
            f"{config.name.replace('_', '-')}-s{i}.myshopify.com",
            config.products,
        )
        for i in range(config.shops)
    ]
    spec = ",".join(
        f"{s.name}:{s.products}:{config.seed * 1000 + i}:{config.plan}" for i, s in enumerate(shops)
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("POSTGRES_URL", "POSTGRES_OWNER_URL", "REDIS_URL")
    }
    env.update(
        {
            "NEANELU_MODE": "local",
            "NEANELU_DATA_DIR": str(DATA),
            "POSTGRES_URL": pg.url(APP_ROLE, database),
            "POSTGRES_OWNER_URL": pg.url(OWNER_ROLE, database),
            "REDIS_URL": redis.url,
            "SHOPIFY_API_KEY": CLIENT_ID,
            "SHOPIFY_API_SECRET": secret,
            "SHOPIFY_API_SECRET_PREVIOUS": "",
            "SHOPIFY_BASE_URL": emulator_url,
            "APP_HOST": api_url,
            "ENCRYPTION_KEY_256": key,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            "METRICS_PORT": "0",
            "API_METRICS_PORT": "0",
            "OTEL_SDK_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            **config.env,
        }
    )
    emulator = Proc(
        "emulator",
        [
            sys.executable,
            "-m",
            "shopify_emulator",
            "--shops",
            spec,
            "--port",
            str(emulator_port),
            "--seed",
            str(config.seed),
            "--plan",
            config.plan,
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            secret,
            "--webhook-time-scale",
            str(config.time_scale),
            "--log-level",
            "warning",
            *config.emulator_args,
        ],
        env,
        run_dir / "emulator.log",
    )
    api = Proc(
        "api",
        [
            str(ROOT / ".venv/bin/neanelu"),
            "serve",
            "--port",
            str(api_port),
            "--log-level",
            "warning",
            "--workers",
            str(config.api_workers),
        ],
        env,
        run_dir / "api.log",
    )
    http = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))
    stack = Stack(
        config,
        run_dir,
        pg,
        redis,
        database,
        secret,
        key,
        emulator_url,
        api_url,
        env,
        emulator,
        api,
        [],
        shops,
        http,
    )

    async def emulator_up() -> bool:
        if not emulator.alive:
            raise DrillFailed(f"the emulator exited: see {emulator.log}")
        try:
            return (await http.get(f"{emulator_url}/_emulator/health", timeout=2)).is_success
        except httpx.HTTPError:
            return False

    try:
        emulator.start()
        await eventually(emulator_up, "the emulator", STARTUP_TIMEOUT_S, every=0.2)
        api.start()
        await stack.wait_api()
        for _ in range(config.workers):
            stack.add_worker()
    except BaseException:
        # A stack that did not come up is not handed back, so nothing else would stop its
        # processes: left running, its workers would take the next drill's jobs.
        await stack.close()
        raise
    return stack
