"""With OTEL_EXPORTER_OTLP_ENDPOINT pointing at nothing, the service starts, serves and exits with
no error output (a fresh process, so tracing is set up exactly as in production)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, httpx
    from neanelu.config import load_settings
    from neanelu.db.services import ServiceUrls
    from neanelu.web.app import create_app
    from neanelu.telemetry import setup_metrics, shutdown_tracing

    settings = load_settings()
    app = create_app(settings, ServiceUrls("postgresql://x/y", "postgresql://x/y", "redis://x", False, False))

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            for _ in range(300):
                assert (await c.get("/health/live")).status_code == 200
                assert (await c.get("/no-such-page")).status_code == 404
            assert (await c.get("/metrics")).status_code == 404  # served on its own port
        assert "neanelu_http_requests_total" in setup_metrics().exposition().decode()

    asyncio.run(main())
    shutdown_tracing()
    """
)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_collector_is_silent() -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OTEL_SAMPLE_RATIO": "1.0",
        "LOG_FORMAT": "json",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    # At most the one warning that names the unreachable collector; no traceback, no per-batch
    # or per-request noise.
    assert "Traceback" not in done.stderr
    assert len(lines) <= 1, lines
    assert all("trace export" in line for line in lines), lines
