"""The worker's /metrics listens on loopback unless METRICS_HOST says otherwise."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import psutil
import pytest

from neanelu.config import SettingsError, load_settings
from neanelu.telemetry.metrics import Metrics, MetricsServer
from neanelu.worker.main import worker_metrics


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _other_address() -> str | None:
    """An IPv4 address of this host that is not loopback (None on a host that has only lo)."""
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return str(a.address)
    return None


def _reachable(host: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/metrics", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[MetricsServer, int]]:
    port = _free_port()
    settings = load_settings(metrics_port=port, **request.param)
    server = worker_metrics(Metrics(), settings)
    assert server is not None
    yield server, port
    server.close()


@pytest.mark.parametrize("served", [{}], indirect=True)
def test_metrics_bind_loopback_by_default(served: tuple[MetricsServer, int]) -> None:
    server, port = served
    assert server.server.server_address[0] == "127.0.0.1"
    assert _reachable("127.0.0.1", port)
    other = _other_address()
    if other is not None:
        assert not _reachable(other, port)


@pytest.mark.parametrize("served", [{"metrics_host": "0.0.0.0"}], indirect=True)
def test_metrics_host_opens_them_to_other_interfaces(served: tuple[MetricsServer, int]) -> None:
    server, port = served
    assert server.server.server_address[0] == "0.0.0.0"
    other = _other_address()
    if other is None:
        pytest.skip("this host has no address besides loopback")
    assert _reachable(other, port)


def test_a_bad_metrics_host_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="METRICS_HOST"):
        load_settings(metrics_host="0.0.0.0/0")
