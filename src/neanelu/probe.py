"""The worker's liveness file and the container health probe that reads it
(`neanelu worker --check`).

Kept apart from the queue and the CLI on purpose: the probe runs every 30 s with a 10 s timeout (the
plan's health check), and importing the whole command line (every domain, FastAPI, the worker
stack) took 8 s of that in a container on a loaded host, so healthy workers were marked unhealthy.
This module imports only the settings and the Redis client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from redis.asyncio import Redis

from neanelu.config import Settings

HEALTH_FILE = "worker.health"
HEALTH_MAX_AGE_S = 30.0


def health_path(settings: Settings) -> Path:
    return settings.data_dir / HEALTH_FILE


async def check_worker(settings: Settings, *, max_age_s: float = HEALTH_MAX_AGE_S) -> bool:
    """Redis answers and a worker loop here beat recently."""
    try:
        age = time.time() - health_path(settings).stat().st_mtime
    except OSError:
        return False
    if age > max_age_s:
        return False
    # A health probe must not start a server: for the embedded Redis, ask the socket a running one
    # would listen on.
    url = settings.redis_url or f"unix://{(settings.data_dir / 'redis' / 'redis.sock').resolve()}"
    redis = Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        return bool(await redis.ping())
    except Exception:
        return False
    finally:
        await redis.aclose()


def run_check(settings: Settings) -> int:
    """The probe's exit code (0 healthy, 1 not), with one line saying which."""
    healthy = asyncio.run(check_worker(settings))
    print("healthy" if healthy else "unhealthy")  # noqa: T201 - the probe's output is its answer
    return 0 if healthy else 1
