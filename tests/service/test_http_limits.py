"""Slow and oversized requests against a real `neanelu serve` in production mode, over real
sockets: idle and trickling connections are cut off, headers and bodies are capped, a client
that leaves mid-body is one log line, and /metrics and the docs are not on the API port."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from neanelu.db.embedded import EmbeddedPostgres
from neanelu.shopify.hmac import sign_webhook
from shopify_emulator.server import free_port
from tests.databases import DATA_DIR, create_database, drop_database
from tests.service.support import CLIENT_ID, SECRET

MAX_CONNECTIONS = 12
MAX_HEADER_BYTES = 8192
WEBHOOK_CAP = 4096
# Generous: the assertions are that the server closes the connection, not how fast it does.
WAIT_S = 15.0


@dataclass(frozen=True)
class Served:
    port: int
    metrics_port: int
    log: Path

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT_S)
        return sock

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open; got {data[:80]!r}") from None
    return data


@pytest.fixture(scope="module")
def served(
    pg_server: EmbeddedPostgres,
    pg_template: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Served]:
    database = create_database(pg_server, pg_template)
    port, metrics_port = free_port(), free_port()
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    env = {
        **os.environ,
        "NEANELU_MODE": "production",
        "NEANELU_DATA_DIR": str(DATA_DIR),
        "SHOPIFY_API_KEY": CLIENT_ID,
        "SHOPIFY_API_SECRET": SECRET,
        "POSTGRES_URL": database.app_url,
        "POSTGRES_OWNER_URL": database.owner_url,
        "REDIS_URL": redis_url,
        "APP_HOST": "https://neanelu.test",
        "ENCRYPTION_KEY_256": base64.b64encode(os.urandom(32)).decode(),
        "API_METRICS_PORT": str(metrics_port),
        "METRICS_HOST": "127.0.0.1",
        "HTTP_HEADER_TIMEOUT_S": "1",
        "HTTP_BODY_TIMEOUT_S": "1",
        "HTTP_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        "HTTP_MAX_HEADER_BYTES": str(MAX_HEADER_BYTES),
        "WEBHOOK_MAX_BODY_BYTES": str(WEBHOOK_CAP),
        "OTEL_SDK_DISABLED": "true",
        "LOG_FORMAT": "json",
    }
    env.pop("SHOPIFY_API_SECRET_PREVIOUS", None)
    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "neanelu", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "neanelu serve did not start"
            time.sleep(0.1)
        yield Served(port, metrics_port, log)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        drop_database(database)


def test_idle_and_trickling_connections_are_cut_off(served: Served) -> None:
    """Slowloris: connections that send nothing, or a header byte now and then, are closed with
    a 408 once the header deadline passes, however many there are."""
    results: list[bytes] = []

    def trickle() -> None:
        with served.connect() as sock:
            sock.sendall(b"POST /api/webhooks HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            try:
                for _ in range(int(WAIT_S / 0.25)):
                    sock.sendall(b"a")
                    time.sleep(0.25)
            except (BrokenPipeError, ConnectionResetError):
                pass
            results.append(_read_until_closed(sock))

    threads = [threading.Thread(target=trickle) for _ in range(MAX_CONNECTIONS // 2)]
    for thread in threads:
        thread.start()
    with served.connect() as idle:
        assert _read_until_closed(idle).startswith(b"HTTP/1.1 408 ")
    for thread in threads:
        thread.join()
    assert len(results) == len(threads)
    for answer in results:
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert httpx.get(f"http://127.0.0.1:{served.port}/health/live").status_code == 200


def test_connections_beyond_the_cap_are_closed_at_once(served: Served) -> None:
    socks = [served.connect() for _ in range(MAX_CONNECTIONS + 4)]
    try:
        answers = [_read_until_closed(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    # The extra ones were closed unanswered; the others waited for their header deadline.
    # (Connections of an earlier test still closing can only make more of them extra.)
    unanswered = sum(1 for a in answers if a == b"")
    timed_out = sum(1 for a in answers if a.startswith(b"HTTP/1.1 408 "))
    assert unanswered + timed_out == len(answers)
    assert unanswered >= 4
    assert 1 <= timed_out <= MAX_CONNECTIONS


@pytest.mark.parametrize(
    ("size", "write"),
    [(64 * 1024, 1024 * 1024), (8 * 1024 * 1024, 65536)],
    ids=["64KiB-in-one-write", "8MiB-in-pieces"],
)
def test_oversized_headers_get_431(served: Served, size: int, write: int) -> None:
    request = b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n"
    with served.connect() as sock:
        try:
            for offset in range(0, len(request), write):
                sock.sendall(request[offset : offset + write])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what it answered is still in our buffer
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:80]
    # Headers of a normal size still pass.
    response = httpx.get(
        f"http://127.0.0.1:{served.port}/health/live", headers={"X-Ok": "a" * 4000}
    )
    assert response.status_code == 200


def _webhook_head(body: bytes, length: int) -> bytes:
    headers = {
        "Host": "x",
        "Content-Type": "application/json",
        "Content-Length": str(length),
        "X-Shopify-Hmac-Sha256": sign_webhook(body, SECRET),
        "X-Shopify-Topic": "products/update",
        "X-Shopify-Shop-Domain": "slow.myshopify.com",
        "X-Shopify-Webhook-Id": "slow-1",
    }
    lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /api/webhooks HTTP/1.1\r\n{lines}\r\n".encode()


BODY = b'{"id": 1, "title": "' + b"x" * 1500 + b'"}'


def test_slow_body_is_cut_off(served: Served) -> None:
    with served.connect() as sock:
        sock.sendall(_webhook_head(BODY, len(BODY)) + BODY[:100])
        answer = _read_until_closed(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]


def test_a_client_leaving_mid_body_is_one_log_line(served: Served) -> None:
    body = BODY
    with served.connect() as sock:
        sock.sendall(_webhook_head(body, len(body)) + body[:100])
        time.sleep(0.2)
    deadline = time.monotonic() + WAIT_S
    while "abandoned by the client" not in served.log_text():
        assert time.monotonic() < deadline, served.log_text()[-2000:]
        time.sleep(0.1)
    assert "Traceback" not in served.log_text()


def test_bodies_are_capped_per_route(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}"
    big = b"{" + b" " * (WEBHOOK_CAP + 10) + b"}"
    webhook = httpx.post(
        f"{base}/api/webhooks",
        content=big,
        headers={
            "X-Shopify-Hmac-Sha256": "a",
            "X-Shopify-Topic": "t",
            "X-Shopify-Shop-Domain": "a.myshopify.com",
            "X-Shopify-Webhook-Id": "1",
        },
    )
    assert webhook.status_code == 413
    # Every other route takes at most HTTP_MAX_BODY_BYTES (64 KiB by default).
    other = httpx.post(f"{base}/auth/install", content=b"x" * 100_000)
    assert other.status_code == 413
    assert "body exceeds 65536 bytes" in other.text


def test_metrics_and_docs_are_not_on_the_api_port(served: Served) -> None:
    base = f"http://127.0.0.1:{served.port}"
    for path in ("/metrics", "/docs", "/redoc", "/openapi.json"):
        assert httpx.get(base + path).status_code == 404, path
    scraped = httpx.get(f"http://127.0.0.1:{served.metrics_port}/metrics")
    assert scraped.status_code == 200
    assert 'neanelu_http_requests_total{method="GET",route="/health/live"' in scraped.text
