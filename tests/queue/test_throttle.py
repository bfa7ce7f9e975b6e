"""THROTTLED and 429 from the Shopify emulator: the job comes back after the block with its attempt
unchanged, and no other job of the shop starts in between."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis

from neanelu.queue.client import QueueClient
from neanelu.queue.context import JobContext
from neanelu.queue.ratelimit import ThrottleStatus
from neanelu.queue.registry import Registry, TaskHandle
from neanelu.queue.settings import QueueSettings
from neanelu.queue.worker import Worker
from shopify_emulator import EmulatorConfig, ShopConfig, start_in_thread
from shopify_emulator.server import RunningEmulator

QUERY = "{ products(first: 5) { edges { node { id title } } } }"
REQUESTED = 2 + 5 * 2  # connection 2 + first * (node 1 + ... ) as the emulator and Shopify count

registry = Registry()


class Env:
    http: httpx.AsyncClient | None = None
    base_url = ""
    token = ""
    events: list[tuple[str, int, str, float]] = []


class Call(msgspec.Struct, frozen=True):
    shop: str


shopify_call: TaskHandle[Call] = TaskHandle(name="throttle.call", queue="sync", payload_type=Call)


async def call_shopify(ctx: JobContext, payload: Call) -> None:
    assert Env.http is not None
    Env.events.append((ctx.job_id, ctx.attempt, "start", time.monotonic()))
    await ctx.limiter.acquire(REQUESTED)
    response = await Env.http.post(
        f"{Env.base_url}/admin/api/2026-01/graphql.json",
        json={"query": QUERY},
        headers={"Host": f"{payload.shop}.myshopify.com", "X-Shopify-Access-Token": Env.token},
    )
    if response.status_code == 429:
        Env.events.append((ctx.job_id, ctx.attempt, "429", time.monotonic()))
        retry_after = float(response.headers["Retry-After"])
        await ctx.limiter.throttled(None, REQUESTED, retry_after_s=retry_after)
    body = response.json()
    status = ThrottleStatus.from_extensions(body.get("extensions"))
    if any(e.get("extensions", {}).get("code") == "THROTTLED" for e in body.get("errors", [])):
        Env.events.append((ctx.job_id, ctx.attempt, "throttled", time.monotonic()))
        await ctx.limiter.throttled(status, REQUESTED)
    actual = body["extensions"]["cost"]["actualQueryCost"]
    await ctx.limiter.settle(REQUESTED, actual, status)
    Env.events.append((ctx.job_id, ctx.attempt, "end", time.monotonic()))


registry.bind(shopify_call, call_shopify)


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    config = EmulatorConfig(shops=[ShopConfig(name="thr", products=20)])
    with start_in_thread(config, port=0) as running:
        yield running


@pytest.fixture
async def env(emulator: RunningEmulator) -> AsyncIterator[None]:
    async with httpx.AsyncClient(timeout=10) as http:
        minted = await http.post(f"{emulator.base_url}/_emulator/shops/thr/tokens", json={})
        Env.http, Env.base_url, Env.token = http, emulator.base_url, minted.json()["access_token"]
        Env.events = []
        yield
        await http.delete(f"{emulator.base_url}/_emulator/shops/thr/faults")
        Env.http = None


@pytest.mark.parametrize(
    ("kind", "params"), [("throttled", {}), ("http_429", {"retry_after": 0.6})]
)
async def test_throttled_job_runs_again_after_block(
    env: None,
    emulator: RunningEmulator,
    redis_client: aioredis.Redis,
    key_prefix: str,
    kind: str,
    params: dict[str, float],
) -> None:
    assert Env.http is not None
    fault = await Env.http.post(
        f"{emulator.base_url}/_emulator/shops/thr/faults",
        json={"kind": kind, "count": 1, "params": params},
    )
    assert fault.status_code < 300, fault.text
    client = QueueClient(
        redis_client, {"sync": QueueSettings(name="sync", lease_ms=5000)}, prefix=key_prefix
    )
    q = client.queue("sync")
    # One job at a time for the shop: without the group block the second job would take the slot
    # the moment the first is deferred.
    await q.set_group_concurrency("thr", 1)
    await shopify_call.enqueue(client, Call("thr"), group="thr", job_id="first")
    await shopify_call.enqueue(client, Call("thr"), group="thr", job_id="second")
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(client, registry, ["sync"], concurrency=4).run(stop))

    async def both_done() -> None:
        while (await q.counts()).completed < 2:  # noqa: ASYNC110 - the state is in Redis
            await asyncio.sleep(0.02)

    await asyncio.wait_for(both_done(), 20)
    stop.set()
    await task
    refused = "429" if kind == "http_429" else "throttled"
    steps = [(job, attempt, event) for job, attempt, event, _ in Env.events]
    assert steps == [
        ("first", 1, "start"),
        ("first", 1, refused),
        ("first", 1, "start"),
        ("first", 1, "end"),
        ("second", 1, "start"),
        ("second", 1, "end"),
    ]
    if kind == "http_429":
        # The shop rested at least Shopify's Retry-After before the job came back.
        gap = Env.events[2][3] - Env.events[1][3]
        assert gap >= 0.55, gap
