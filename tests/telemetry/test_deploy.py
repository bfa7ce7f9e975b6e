"""The alert rules and the dashboard only name series the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from neanelu.telemetry.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
_SERIES = re.compile(r"\bneanelu_[a-z0-9_]+\b")


def _exported() -> set[str]:
    return Metrics().names()


def test_alert_rules_parse_and_name_real_series() -> None:
    doc = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} >= {
        "NeaneluRetryRateHigh",
        "NeaneluStalledJobs",
        "NeaneluDeadLetters",
        "NeaneluShopifyThrottling",
        "NeaneluSyncFailures",
        "NeaneluNotReady",
    }
    exported = _exported()
    for rule in rules:
        names = set(_SERIES.findall(rule["expr"]))
        assert names, rule["alert"]
        assert names <= exported, (rule["alert"], names - exported)
        assert rule["annotations"]["summary"]


def test_dashboard_panels_name_real_series() -> None:
    board = json.loads((ROOT / "deploy/grafana/neanelu.json").read_text())
    exported = _exported()
    seen: set[str] = set()
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(_SERIES.findall(target["expr"]))
            assert names <= exported, (panel["title"], names - exported)
            seen |= names
    # Every family the issue asks to see is on the board.
    for family in (
        "neanelu_http_requests_total",
        "neanelu_webhooks_total",
        "neanelu_queue_jobs",
        "neanelu_queue_wait_seconds_bucket",
        "neanelu_queue_run_seconds_bucket",
        "neanelu_queue_retries_total",
        "neanelu_queue_stalls_total",
        "neanelu_queue_throttles_total",
        "neanelu_ingest_rows_total",
        "neanelu_ingest_bytes_total",
        "neanelu_ingest_rows_per_second",
        "neanelu_shopify_cost_points_total",
        "neanelu_shopify_throttles_total",
        "neanelu_shopify_budget_remaining_ratio_bucket",
        "neanelu_token_refreshes_total",
        "neanelu_sync_runs_total",
    ):
        assert family in seen, family
