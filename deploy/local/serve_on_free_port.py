"""Local override only: run `neanelu serve` on the first free port of API_PORTS (host networking).

With `network_mode: host` every API replica shares the host's ports, so each takes its own from a
small range that the proxy stand-in checks one by one; the port goes to a file for the health check.
`--check` is that health check: GET /health/ready on the recorded port.
"""

from __future__ import annotations

import os
import socket
import sys
import urllib.request
from pathlib import Path

# The image's NEANELU_DATA_DIR (a per-container tmpfs), not a shared /tmp.
PORT_FILE = Path(os.environ.get("NEANELU_DATA_DIR", "/tmp/neanelu")) / "api-port"  # noqa: S108


def free_port(first: int, last: int) -> int:
    for port in range(first, last + 1):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"API_PORTS {first}-{last}: every port is taken")


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        port = PORT_FILE.read_text().strip()
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=4)
        return
    first, _, last = os.environ.get("API_PORTS", "18001-18004").partition("-")
    port = free_port(int(first), int(last or first))
    PORT_FILE.parent.mkdir(parents=True, exist_ok=True)
    PORT_FILE.write_text(str(port))
    args = ["neanelu", "serve", "--host", "127.0.0.1", "--port", str(port), *sys.argv[1:]]
    os.execvp(args[0], args)  # noqa: S606


if __name__ == "__main__":
    main()
