"""The local model, loaded once for the search tests (loading and checking it takes seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from neanelu.search.local.model import LocalOptions, LocalProvider
from neanelu.search.standin import start_query_engine_redis


@pytest.fixture(scope="session")
def local_provider() -> LocalProvider:
    return LocalProvider(LocalOptions(batch_size=32))


@pytest.fixture(scope="session")
def query_engine_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A URL of the Redis query engine stand-in, stopped after the session."""
    server = start_query_engine_redis(tmp_path_factory.mktemp("redis-query"))
    yield server.url
    server.stop()
