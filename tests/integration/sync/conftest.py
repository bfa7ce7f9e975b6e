"""A live emulator shared by the module, and a harness per test on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from neanelu.db.pool import Conn
from shopify_emulator.config import CatalogShape, EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from tests.factories import create_shop
from tests.integration.sync.helpers import SyncHarness


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    config = EmulatorConfig(
        shops=[ShopConfig(name="alpha", products=120, seed=7)],
        catalog=CatalogShape(variants_mean=3.0, variants_max=12, locations=2),
        bulk_dir=str(tmp_path_factory.mktemp("bulk")),
    )
    with start_in_thread(config) as running:
        yield running


@pytest.fixture
async def harness(
    emulator: RunningEmulator, app_pool: AsyncConnectionPool[Conn]
) -> AsyncIterator[SyncHarness]:
    async with httpx.AsyncClient(timeout=30) as http:
        shop_id = await create_shop(app_pool, "alpha.myshopify.com")
        h = SyncHarness(emulator, app_pool, http, "alpha", shop_id)
        await h.control("DELETE", "/faults")
        await h.control("DELETE", "/bulk/served-files")
        yield h
        await h.control("DELETE", "/faults")
        await h.control("DELETE", "/bulk/served-files")
