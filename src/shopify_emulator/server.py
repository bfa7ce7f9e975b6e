"""Running the emulator: uvicorn in a background thread, for tests, benchmarks and the demo."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType

import uvicorn

from shopify_emulator.app import create_app
from shopify_emulator.config import EmulatorConfig

STARTUP_TIMEOUT_S = 20.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RunningEmulator:
    """A live emulator on a real socket. Use as a context manager, or call `stop()`."""

    def __init__(self, config: EmulatorConfig, host: str, port: int, log_level: str) -> None:
        self.config = config
        self.host = host
        self.port = port
        self.app = create_app(config)
        uv_config = uvicorn.Config(
            self.app, host=host, port=port, log_level=log_level, lifespan="on", access_log=False
        )
        self._server = uvicorn.Server(uv_config)
        self._thread = threading.Thread(
            target=self._server.run, name=f"emulator-{port}", daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def shop_url(self, shop: str) -> str:
        """The Admin GraphQL URL the project's client uses with a `Host: {shop}.myshopify.com` header."""
        return f"{self.base_url}/admin/api/{self.config.default_api_version}/graphql.json"

    def start(self) -> RunningEmulator:
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"emulator failed to start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_in_thread(
    config: EmulatorConfig, port: int = 0, host: str = "127.0.0.1", log_level: str = "warning"
) -> RunningEmulator:
    """Start the emulator on `port` (0 = a free one) and return once it accepts connections."""
    chosen = port or free_port(host)
    if not config.public_base_url:
        config.public_base_url = f"http://{host}:{chosen}"
    return RunningEmulator(config, host, chosen, log_level).start()
