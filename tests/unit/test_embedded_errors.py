"""A server that cannot start says why and where its log is."""

from __future__ import annotations

from pathlib import Path

import pytest

from neanelu.db.embedded import EmbeddedServiceError, start_postgres, start_redis


def test_postgres_that_cannot_start_names_the_reason_and_log(tmp_path: Path) -> None:
    (tmp_path / "postgres").write_text("not a data directory")
    with pytest.raises(EmbeddedServiceError) as info:
        start_postgres(tmp_path)
    message = str(info.value)
    assert "PostgreSQL did not start" in message
    assert str(tmp_path / "postgres" / "log") in message


def test_redis_that_cannot_start_names_the_reason_and_log(tmp_path: Path) -> None:
    (tmp_path / "redis").write_text("not a directory")
    with pytest.raises(EmbeddedServiceError) as info:
        start_redis(tmp_path)
    message = str(info.value)
    assert "Redis did not start" in message
    assert str(tmp_path / "redis" / "redis.log") in message
