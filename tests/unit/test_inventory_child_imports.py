"""The inventory's child process loads only what its phase needs: its resident memory counts in
the sync's peak (bench-ingest's `peak_rss_mb`), and each of these packages costs megabytes."""

from __future__ import annotations

import subprocess
import sys

# redis (with the OpenTelemetry SDK its observability module imports) and httpx's command-line
# client (click, rich, pygments).
UNNEEDED = ("redis", "rich", "click", "pygments")

_PROBE = (
    "import sys, neanelu.sync.inventory_child; "
    f"print(','.join(m for m in {UNNEEDED!r} if m in sys.modules))"
)


def test_the_inventory_child_does_not_import_what_it_never_uses() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _PROBE], check=True, capture_output=True, text=True
    ).stdout.strip()
    assert loaded == ""
