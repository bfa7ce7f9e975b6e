"""The console's tests: a signed-in operator, on the service fixtures (`runtime`, the ASGI
`client`) of tests/conftest.py."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
import pytest

from neanelu.db.pool import global_scope
from neanelu.runtime import Runtime
from neanelu.web.console import operators

USERNAME = "ops@example.com"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class SignedIn:
    client: httpx.AsyncClient
    csrf: str


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


async def create_operator(rt: Runtime, username: str = USERNAME, password: str = PASSWORD) -> None:
    async with global_scope(rt.pool) as conn:
        await operators.create(conn, username, password)


async def sign_in(
    c: httpx.AsyncClient, username: str = USERNAME, password: str = PASSWORD, next_path: str = ""
) -> httpx.Response:
    form = await c.get("/admin/login")
    assert form.status_code == 200
    data = {"csrf_token": csrf_of(form.text), "username": username, "password": password}
    if next_path:
        data["next"] = next_path
    return await c.post("/admin/login", data=data)


@pytest.fixture
async def signed_in(runtime: Runtime, client: httpx.AsyncClient) -> SignedIn:
    await create_operator(runtime)
    response = await sign_in(client)
    assert response.status_code == 303, response.text
    page = await client.get("/admin/shops")
    assert page.status_code == 200
    return SignedIn(client, csrf_of(page.text))
