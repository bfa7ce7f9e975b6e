"""`neanelu worker --check` (the container's health probe, 10 s timeout) answers without importing
the command line's other parts: in a container on a loaded host they took 8 s to import, and healthy
workers were marked unhealthy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HEAVY = ("typer", "fastapi", "neanelu.cli.main", "neanelu.queue", "psycopg_pool")

_PROBE = f"""
import sys
sys.argv = ["neanelu", "worker", "--check"]
from neanelu.cli import entry
try:
    entry.main()
except SystemExit as exc:
    code = exc.code
print(code, ",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def _probe(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "POSTGRES_URL"}}
    return subprocess.run(
        [sys.executable, "-c", _PROBE],
        check=True,
        capture_output=True,
        text=True,
        env={**clean, "NEANELU_MODE": "local", "NEANELU_DATA_DIR": str(data_dir), **env},
    )


def test_the_probe_answers_without_the_rest_of_the_command_line(tmp_path: Path) -> None:
    out = _probe(tmp_path).stdout.splitlines()
    # No worker has beaten here: unhealthy, exit 1, and nothing heavy imported to say so.
    assert out == ["unhealthy", "1 "]


def test_a_bad_setting_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = _probe(tmp_path, WORKER_CONCURRENCY="many")
    assert result.stdout.split() == ["2"]  # exit 2, nothing heavy imported
    assert "WORKER_CONCURRENCY" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
