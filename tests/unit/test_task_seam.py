"""The task seam: every declared handle is bound to a handler by the worker, once."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from neanelu import handles
from neanelu.queue import JobContext, Registry, TaskHandle
from neanelu.worker.main import build_registry


def test_worker_binds_every_declared_task_and_nothing_else() -> None:
    registry = build_registry()
    bound = {t.name: t for t in registry.tasks()}
    assert sorted(bound) == sorted(h.name for h in handles.HANDLES)
    for handle in handles.HANDLES:
        assert bound[handle.name].handle is handle
        assert bound[handle.name].queue == handle.queue
    # The full sync and the embedding job fail their run when the queue gives their job up.
    assert sorted(t.name for t in registry.tasks() if t.on_dead is not None) == [
        "search.embed",
        "sync.full",
    ]


def test_a_task_is_bound_once() -> None:
    class Ping(msgspec.Struct, frozen=True):
        n: int = 0

    ping: TaskHandle[Ping] = TaskHandle(name="test.ping", queue="sync", payload_type=Ping)

    async def run(ctx: JobContext, payload: Ping) -> None:
        return None

    registry = Registry()
    registry.bind(ping, run)
    with pytest.raises(ValueError, match="registered twice"):
        registry.bind(ping, run)


def test_a_handle_refuses_another_payload_type() -> None:
    # What mypy refuses at every typed call site, refused at run time too.
    wrong: Any = handles.ShopRef(shop_id="x")
    with pytest.raises(TypeError, match="takes FullSyncJob"):
        handles.full_sync.spec(wrong, group="g")
