"""The `neanelu` command: what it prints, and how it refuses bad arguments."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from neanelu.cli.main import app
from tests.databases import DATA_DIR


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NEANELU_DATA_DIR", str(DATA_DIR))
    for name in ("POSTGRES_URL", "POSTGRES_OWNER_URL", "REDIS_URL", "NEANELU_MODE"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_db_up_starts_migrates_and_prints_the_urls(runner: CliRunner) -> None:
    result = runner.invoke(app, ["db", "up"])
    assert result.exit_code == 0, result.output
    assert "PostgreSQL (app)" in result.output
    assert "neanelu_app" in result.output
    assert "Redis" in result.output
    assert "migrations at head" in result.output


def test_bad_shop_domain_is_refused_before_anything_runs(runner: CliRunner) -> None:
    result = runner.invoke(app, ["sync", "status", "--shop", "evil.example.com/x"])
    assert result.exit_code == 2
    assert "--shop" in result.output


def test_unknown_queue_is_named(runner: CliRunner) -> None:
    result = runner.invoke(app, ["worker", "--queues", "sync,nope"])
    assert result.exit_code == 2
    assert "nope" in result.output


def test_production_with_placeholders_stops_with_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEANELU_MODE", "production")
    monkeypatch.setenv("SHOPIFY_API_SECRET", "changeme")
    result = runner.invoke(app, ["db", "up"])
    assert result.exit_code == 2
    assert "invalid configuration" in result.output
    assert result.output.count("\n") <= 3


def test_bad_previous_encryption_key_stops_serve_with_one_line(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENCRYPTION_KEYS_PREVIOUS", "old:not-a-key")
    result = runner.invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 2
    assert "ENCRYPTION_KEYS_PREVIOUS" in result.output
    assert "entry 1" in result.output
    assert "Traceback" not in result.output
    assert "not-a-key" not in result.output
    # One message (the terminal may wrap it), not a traceback.
    assert len(result.output.strip().splitlines()) <= 2
