"""The service with Shopify played by the emulator over HTTP: the emulator on a real socket, the
runtime's HTTP client pointed at it, and the app reached over ASGI (the merchant's browser)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from neanelu.shops.runtime import Runtime, bind_runtime
from shopify_emulator.config import EmulatorConfig, ShopConfig
from shopify_emulator.server import RunningEmulator, start_in_thread
from shopify_emulator.state import ShopState
from tests.conftest import TestDatabase
from tests.service.conftest import (
    CLIENT_ID,
    SECRET,
    app_for,
    build_runtime,
    close_runtime,
    make_settings,
)


@dataclass
class Emulated:
    emulator: RunningEmulator
    runtime: Runtime
    client: httpx.AsyncClient  # the app, over ASGI

    def shop_state(self, name: str) -> ShopState:
        """The emulator's own record of a shop (what Shopify knows), for assertions."""
        state = self.emulator.app.state.emulator
        shop = state.shop_named(name)
        assert shop is not None
        return shop  # type: ignore[no-any-return]


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
        with bind_runtime(rt):
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                yield Emulated(emulator, rt, c)
        await close_runtime(rt)
    finally:
        emulator.stop()


def session_token(
    shop: str,
    *,
    secret: str = SECRET,
    audience: str = CLIENT_ID,
    lifetime_s: int = 60,
    **claims: Any,
) -> str:
    """An App Bridge session token as Shopify issues it (HS256 with the app secret)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": f"https://{shop}/admin",
        "dest": f"https://{shop}",
        "aud": audience,
        "sub": "902541635",
        "exp": now + lifetime_s,
        "nbf": now - 1,
        "iat": now,
        "jti": f"jti-{now}-{shop}",
        "sid": "session-1",
        **claims,
    }
    return jwt.encode(payload, secret, algorithm="HS256")
