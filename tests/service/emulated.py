"""The service with Shopify played by the emulator over HTTP: the emulator on a real socket, the
runtime's HTTP client pointed at it, and the app reached over ASGI (the merchant's browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from neanelu.runtime import Runtime
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from shopify_emulator.state import ShopState
from tests.databases import TestDatabase
from tests.service.support import (
    CLIENT_ID,
    SECRET,
    app_for,
    build_runtime,
    close_runtime,
    make_settings,
)

__all__ = ["Emulated", "emulated_service"]


@dataclass
class Emulated:
    emulator: RunningEmulator
    runtime: Runtime
    client: httpx.AsyncClient  # the app, over ASGI

    def shop_state(self, name: str) -> ShopState:
        """The emulator's own record of a shop (what Shopify knows), for assertions."""
        state = self.emulator.app.state.emulator
        shop: ShopState | None = state.shop_named(name)
        assert shop is not None
        return shop


@asynccontextmanager
async def emulated_service(
    database: TestDatabase,
    redis_url: str,
    key_prefix: str,
    *,
    shops: tuple[str, ...] = ("acme",),
    **settings_env: Any,
) -> AsyncIterator[Emulated]:
    emulator = start_in_thread(
        EmulatorConfig(
            client_id=CLIENT_ID,
            client_secret=SECRET,
            shops=[ShopConfig(name=name, products=2) for name in shops],
        )
    )
    try:
        settings = make_settings(SHOPIFY_BASE_URL=emulator.base_url, **settings_env)
        rt = await build_runtime(
            settings, database, redis_url, key_prefix, transport=httpx.AsyncHTTPTransport()
        )
        transport = httpx.ASGITransport(app=app_for(rt, database, redis_url))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Emulated(emulator, rt, c)
        await close_runtime(rt)
    finally:
        emulator.stop()
