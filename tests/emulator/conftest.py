"""Fixtures: a live emulator on a real socket, an HTTP client per shop, and a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shopify_emulator import EmulatorConfig, RunningEmulator, ShopConfig, start_in_thread
from shopify_emulator.server import free_port
from tests.emulator.clients import Connect, MakeEmulator, Received, Receiver, ReceiverFactory, Shop


# Module scope: a module's emulators stop when it ends, so no test sees state (tokens, shops,
# faults, webhook subscriptions) another module left behind. Starting and stopping the shared
# two-shop emulator takes about 0.2 s, once per module.
@pytest.fixture(scope="module")
def make_emulator() -> Iterator[MakeEmulator]:
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
def emulator(make_emulator: MakeEmulator) -> RunningEmulator:
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
def receiver_factory() -> Iterator[ReceiverFactory]:
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
def connect() -> Iterator[Connect]:
    """Open a client for `name` on a running emulator; closed after the test."""
    opened: list[Shop] = []

    def make(emulator: RunningEmulator, name: str, token: str | None = None) -> Shop:
        shop = Shop(emulator, name, token)
        opened.append(shop)
        return shop

    yield make
    for shop in opened:
        shop.close()
