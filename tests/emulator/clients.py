"""Clients for a live emulator (plain helpers; the fixtures that make them are in conftest.py):
an HTTP client per shop, a webhook receiver, and the fixtures' call signatures."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from shopify_emulator import EmulatorConfig, RunningEmulator

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


class MakeEmulator(Protocol):
    """The `make_emulator` fixture: start an emulator (stopped when the module's tests end)."""

    def __call__(self, config: EmulatorConfig | None = None, **changes: Any) -> RunningEmulator: ...


class Connect(Protocol):
    """The `connect` fixture: a client for shop `name` (closed after the test)."""

    def __call__(self, emulator: RunningEmulator, name: str, token: str | None = None) -> Shop: ...


ReceiverFactory = Callable[[], Receiver]
