"""bind_job puts back exactly the log context that was bound before its block, whatever happens
inside it."""

from __future__ import annotations

import pytest
import structlog

from neanelu.telemetry.logging import bind_job


def test_bind_job_nests_and_restores_the_outer_context() -> None:
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="r1")
    with bind_job("outer", shop_id="s0"):
        with bind_job("inner", shop_id="s1", queue="sync", task="t"):
            assert structlog.contextvars.get_contextvars() == {
                "request_id": "r1",
                "job_id": "inner",
                "shop_id": "s1",
                "queue": "sync",
                "task": "t",
            }
        assert structlog.contextvars.get_contextvars() == {
            "request_id": "r1",
            "job_id": "outer",
            "shop_id": "s0",
        }
    assert structlog.contextvars.get_contextvars() == {"request_id": "r1"}
    with pytest.raises(KeyError), bind_job("failing"):
        raise KeyError("boom")
    assert structlog.contextvars.get_contextvars() == {"request_id": "r1"}
    structlog.contextvars.clear_contextvars()
