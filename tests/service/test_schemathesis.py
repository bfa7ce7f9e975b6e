"""Property-based requests generated from the OpenAPI document against the real server."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok

from neanelu.db.services import ServiceUrls
from neanelu.web.app import create_app
from shopify_emulator.server import free_port
from tests.databases import TestDatabase
from tests.service.support import make_settings

API_KEY = "nk_schemathesis_service_key_0123456789"


@pytest.fixture
def api_schema(database: TestDatabase, redis_url: str) -> Iterator[schemathesis.BaseSchema]:
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO shops (domain, status, api_key_hash) VALUES (%s, 'installed', %s)",
            ("fuzz.myshopify.com", hashlib.sha256(API_KEY.encode()).digest()),
        )
    app = create_app(
        make_settings(),
        ServiceUrls(database.app_url, database.owner_url, redis_url, False, False),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield schemathesis.openapi.from_url(f"http://127.0.0.1:{port}/openapi.json")
    server.should_exit = True
    thread.join(timeout=10)


# schemathesis' own strategies draw from the `random` module, which hypothesis now reports with a
# deprecation warning on some draws (not every run): it is about the library, not neanelu's API.
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
def test_no_server_errors(api_schema: schemathesis.BaseSchema) -> None:
    """Every operation, with generated parameters, answers without a 5xx. (Driven by hand rather
    than through schemathesis' pytest plugin, which does not load under this pytest.)"""
    operations = []
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), f"operation not loadable: {result}"
        operations.append(result.ok())
    assert {op.path for op in operations} >= {"/api/webhooks", "/api/products", "/auth/callback"}
    calls: list[int] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case[Any]) -> None:
            auth = (
                {"Authorization": f"Bearer {API_KEY}"}
                if case.path.startswith("/api/products")
                else {}
            )
            response = case.call(headers=auth)
            calls.append(response.status_code)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:200]}"
            )

        check()
    # Generated requests reached the server, and not only as refusals.
    assert len(calls) >= 10 * len(operations)
    assert 200 in calls
