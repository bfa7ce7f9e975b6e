"""Restarting the embedded servers, as the failure drills do: Redis keeps what its append-only
file holds, or loses everything when asked to; PostgreSQL restarts only in pg_ctl's modes."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from neanelu.db.embedded import (
    EmbeddedPostgres,
    restart_postgres,
    restart_redis,
    start_redis,
    stop_redis,
)


def test_redis_restart_keeps_its_aof_and_a_lost_redis_comes_back_empty(tmp_path: Path) -> None:
    # A short directory: Unix socket paths are limited to ~100 bytes.
    data = tmp_path
    server = start_redis(data)
    try:
        client = redis.Redis(unix_socket_path=str(server.socket_path))
        client.set("kept", "1")
        client.close()
        again = restart_redis(data)
        client = redis.Redis(unix_socket_path=str(again.socket_path))
        assert client.get("kept") == b"1"
        client.close()
        blank = restart_redis(data, lose_data=True)
        client = redis.Redis(unix_socket_path=str(blank.socket_path))
        assert client.get("kept") is None
        assert client.dbsize() == 0
        client.close()
    finally:
        stop_redis(data)


def test_postgres_restart_refuses_an_unknown_mode(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path, tmp_path, 5432, tmp_path / "log")
    with pytest.raises(ValueError, match="smart, fast or immediate"):
        restart_postgres(pg, mode="abrupt")
