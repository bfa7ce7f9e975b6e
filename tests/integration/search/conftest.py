"""The local model, loaded once for the search tests (loading and checking it takes seconds)."""

from __future__ import annotations

import pytest

from neanelu.search.local.model import LocalOptions, LocalProvider


@pytest.fixture(scope="session")
def local_provider() -> LocalProvider:
    return LocalProvider(LocalOptions(batch_size=32))
