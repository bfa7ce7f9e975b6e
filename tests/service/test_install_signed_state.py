"""An install through the emulator whose OAuth `state` holds a space, a tilde and a star: the
emulator signs the callback so that the official library's check accepts it, and neanelu, which
checks as the library does, completes the install."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from neanelu.db.pool import global_scope
from neanelu.shops import oauth_state
from tests.databases import TestDatabase
from tests.service.emulated import Emulated, emulated_service
from tests.service.support import SECRET
from tests.shopify_library import library_hmac, library_message

SHOP = "acme.myshopify.com"


@pytest.fixture
async def svc(database: TestDatabase, redis_url: str, key_prefix: str) -> AsyncIterator[Emulated]:
    async with emulated_service(
        database, redis_url, key_prefix, SHOPIFY_API_SECRET_PREVIOUS=None
    ) as emulated:
        yield emulated


async def test_install_with_space_tilde_and_star_in_state(
    svc: Emulated, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The app's own nonce is hex; this install is started with a state Shopify may also carry
    # (unique per run: a used state stays marked in Redis for a while).
    nonce = uuid.uuid4().hex
    state = f"install {nonce}~a*b c"
    monkeypatch.setattr(oauth_state, "new_state", lambda: state)
    start = await svc.client.get("/auth/install", params={"shop": SHOP})
    assert start.status_code == 302, start.text
    authorize = urlsplit(start.headers["location"])
    cookie = start.cookies[oauth_state.COOKIE_NAME]
    # The merchant's browser at Shopify's authorize page (the emulator approves at once).
    async with httpx.AsyncClient(base_url=svc.emulator.base_url) as browser:
        approved = await browser.get(f"{authorize.path}?{authorize.query}", headers={"Host": SHOP})
    assert approved.status_code == 302, approved.text
    callback = urlsplit(approved.headers["location"])
    params = dict(parse_qsl(callback.query, keep_blank_values=True))
    assert params["state"] == state
    # The emulator's signature is what the library computes (space %20, ~ escaped, * kept).
    assert f"state=install%20{nonce}%7Ea*b%20c" in library_message(params)
    assert params["hmac"] == library_hmac(params, SECRET)

    svc.client.cookies.clear()
    done = await svc.client.get(
        f"{callback.path}?{callback.query}",
        headers={"Cookie": f"{oauth_state.COOKIE_NAME}={cookie}"},
    )
    assert done.status_code == 302, done.text
    assert done.json()["status"] == "installed"
    async with global_scope(svc.runtime.pool) as conn:
        # The key id says a sealed token is stored (the sealed columns are not the app role's).
        cur = await conn.execute(
            "SELECT status, access_token_key_id IS NOT NULL FROM shops WHERE domain = %s", (SHOP,)
        )
        assert await cur.fetchone() == ("installed", True)
