"""The Makefile's test targets name only test paths that exist: pytest stops at once with "file
or directory not found" on one that does not (`make test-integration` once named tests/e2e)."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _command(words: list[str]) -> list[str]:
    """The command without the environment assignments before it (`VAR=value pytest ...`)."""
    while words and "=" in words[0] and not words[0].startswith("-"):
        words = words[1:]
    return words


@pytest.mark.parametrize("target", ["test", "test-unit", "test-integration", "test-pg16"])
def test_a_test_target_names_only_paths_that_exist(target: str) -> None:
    result = subprocess.run(
        ["make", "-n", target],
        cwd=ROOT,
        env={**os.environ, "ARGS": ""},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    commands = [_command(shlex.split(line)) for line in result.stdout.splitlines()]
    runs = [words for words in commands if words and Path(words[0]).name == "pytest"]
    assert runs, f"make {target} runs no pytest:\n{result.stdout}"
    for words in runs:
        paths = [w.split("::", 1)[0] for w in words[1:] if w.startswith("tests")]
        missing = [p for p in paths if not (ROOT / p).exists()]
        assert not missing, f"make {target} names {missing}, which do not exist"
