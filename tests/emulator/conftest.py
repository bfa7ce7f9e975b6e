"""Fixtures: a live emulator on a real socket, an HTTP client per shop, and a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig, start_in_thread
from shopify_emulator.server import free_port

API = "/admin/api/2026-01/graphql.json"


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """A webhook endpoint: records every POST; answers from `statuses` (then 200), after `delay_s`."""

    url: str
    received: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.received)

    def topics(self) -> list[str]:
        return [r.headers["x-shopify-topic"] for r in self.received]


class Shop:
    """A client bound to one shop through the Host header, as the project's client calls it."""

    def __init__(self, emulator: RunningEmulator, name: str, token: str | None = None) -> None:
        self.name = name
        self.emulator = emulator
        self.http = httpx.Client(
            base_url=emulator.base_url, headers={"Host": f"{name}.myshopify.com"}, timeout=30
        )
        self.token = token or self.mint()

    def mint(self, **body: Any) -> str:
        response = self.http.post(f"/_emulator/shops/{self.name}/tokens", json=body)
        response.raise_for_status()
        return str(response.json()["access_token"])

    def gql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
        version: str = "2026-01",
    ) -> dict[str, Any]:
        response = self.http.post(
            f"/admin/api/{version}/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": token or self.token},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, f"/_emulator/shops/{self.name}{path}", **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def run_bulk(
        self,
        query: str,
        group: bool | None = None,
        token: str | None = None,
        version: str = "2026-01",
    ) -> str:
        arg = "" if group is None else f", groupObjects: {'true' if group else 'false'}"
        out = self.gql(
            f"mutation($q: String!) {{ bulkOperationRunQuery(query: $q{arg}) {{ bulkOperation {{ id status }} userErrors {{ field message code }} }} }}",
            {"q": query},
            token=token,
            version=version,
        )
        payload = out["data"]["bulkOperationRunQuery"]
        assert payload["userErrors"] == [], payload
        return str(payload["bulkOperation"]["id"])

    def wait_bulk(
        self, op_id: str, token: str | None = None, timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            op = self.gql(
                "query($id: ID!) { bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl createdAt completedAt } }",
                {"id": op_id},
                token=token,
            )["data"]["bulkOperation"]
            if (
                op["status"] not in ("CREATED", "RUNNING", "CANCELING")
                or time.monotonic() > deadline
            ):
                return dict(op)
            time.sleep(0.02)

    def close(self) -> None:
        self.http.close()


# Module scope: a module's emulators stop when it ends, so no test sees state (tokens, shops,
# faults, webhook subscriptions) another module left behind; starting one takes milliseconds.
@pytest.fixture(scope="module")
def make_emulator() -> Iterator[Callable[..., RunningEmulator]]:
    started: list[RunningEmulator] = []

    def make(config: EmulatorConfig | None = None, **changes: Any) -> RunningEmulator:
        base = config or EmulatorConfig(shops=[ShopConfig(name="alpha", products=40)])
        for key, value in changes.items():
            setattr(base, key, value)
        running = start_in_thread(base)
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@pytest.fixture(scope="module")
def emulator(make_emulator: Callable[..., RunningEmulator]) -> RunningEmulator:
    """A shared emulator for read-only tests: shop `alpha` (40 products) and `beta` (plus, 25 products)."""
    return make_emulator(
        EmulatorConfig(
            shops=[
                ShopConfig(name="alpha", products=40, seed=7),
                ShopConfig(name="beta", products=25, plan="plus"),
            ],
            compliance_url=None,
        )
    )


@pytest.fixture
def alpha(emulator: RunningEmulator) -> Iterator[Shop]:
    shop = Shop(emulator, "alpha")
    yield shop
    shop.close()


@pytest.fixture(scope="module")
def receiver_factory() -> Iterator[Callable[[], Receiver]]:
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def make() -> Receiver:
        port = free_port()
        receiver = Receiver(url=f"http://127.0.0.1:{port}/hooks")

        async def hook(request: Request) -> Response:
            body = await request.body()
            receiver.received.append(Received(dict(request.headers), body, time.monotonic()))
            if receiver.delay_s:
                import asyncio

                await asyncio.sleep(receiver.delay_s)
            status = receiver.statuses.pop(0) if receiver.statuses else 200
            return Response(status_code=status)

        app = Starlette(routes=[Route("/hooks", hook, methods=["POST"])])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        servers.append((server, thread))
        return receiver

    yield make
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def connect() -> Iterator[Callable[..., Shop]]:
    """Open a client for `name` on a running emulator; closed after the test."""
    opened: list[Shop] = []

    def make(emulator: RunningEmulator, name: str, token: str | None = None) -> Shop:
        shop = Shop(emulator, name, token)
        opened.append(shop)
        return shop

    yield make
    for shop in opened:
        shop.close()
