"""Secrets never reach a log line, whatever shape they take; logs carry trace and job ids."""

from __future__ import annotations

import io
import json
import logging

import structlog
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from neanelu.config import load_settings
from neanelu.telemetry import bind_job, setup_logging, setup_tracing, span
from neanelu.telemetry.redact import MASK, redact, scrub
from neanelu.telemetry.tracing import set_sample_ratio

HEX_HMAC = "a3" * 32
B64_HMAC = "q8Zk1v3pX0mT7yR2wQ9eL4nB6cV5xA1sD3fG7hJ8kLo="


def test_token_shapes_scrubbed_inside_strings() -> None:
    cases = {
        "token shpat_0123456789abcdef0123456789abcdef used": "shpat_",
        "refresh shprt_abcDEF123 and shpss_secret1 shpua_u1 shpca_c1": "shprt_",
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig": "Bearer ",
        f"computed {HEX_HMAC} for body": "computed",
        f"X-Shopify-Hmac-Sha256: {B64_HMAC}": "Hmac",
        "GET https://files.example/x.jsonl?expires=1&signature=abc123&token=t0k": "expires=1",
        "callback?code=oauthcode123&hmac=zz&shop=a.myshopify.com": "shop=a",
        'body {"access_token": "tok-value-1", "scope": "read_products"}': "scope",
        "client_secret=verysecret password=hunter2": "client_secret=",
    }
    secrets = [
        "0123456789abcdef0123456789abcdef",
        "abcDEF123",
        "secret1",
        "eyJhbGciOiJIUzI1NiJ9",
        HEX_HMAC,
        B64_HMAC,
        "abc123",
        "t0k",
        "oauthcode123",
        "tok-value-1",
        "verysecret",
        "hunter2",
    ]
    for text, kept in cases.items():
        out = scrub(text)
        assert kept in out, (text, out)
        assert MASK in out, (text, out)
        for secret in secrets:
            assert secret not in out, (text, out)


def test_sensitive_keys_masked_at_any_depth() -> None:
    event = {
        "event": "called",
        "headers": {"X-Shopify-Access-Token": "plain", "Accept": "application/json"},
        "api_key": "k",
        "items": [{"client_secret": "s"}, {"hmac": "h", "shop": "a.myshopify.com"}],
        "job_id": "j1",
    }
    out = redact(event)
    assert out["headers"] == {"X-Shopify-Access-Token": MASK, "Accept": "application/json"}
    assert out["api_key"] == MASK
    assert out["items"] == [{"client_secret": MASK}, {"hmac": MASK, "shop": "a.myshopify.com"}]
    assert out["job_id"] == "j1"


def test_json_logs_carry_ids_and_no_secrets() -> None:
    settings = load_settings(OTEL_SAMPLE_RATIO=1.0)
    exporter = InMemorySpanExporter()
    setup_tracing(settings, "neanelu-test", exporter=exporter)
    set_sample_ratio(1.0)
    out = io.StringIO()
    setup_logging(settings, json=True, stream=out)
    try:
        with span("work"), bind_job("job-7", shop_id="shop-9", queue="webhook"):
            logging.getLogger("neanelu.test").warning("exchanging token shpat_abcdef0123 for shop")
            structlog.get_logger("neanelu.test").info(
                "called", access_token="shpat_zzz", url="https://x/y?signature=s1"
            )
            try:
                raise ValueError("bad Bearer abc.def.ghi")
            except ValueError:
                logging.getLogger("neanelu.test").exception("failed")
    finally:
        setup_logging(settings, json=True)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    ended = exporter.get_finished_spans()[-1]
    trace_id = format(ended.context.trace_id, "032x")
    for line in lines:
        assert line["trace_id"] == trace_id
        assert line["job_id"] == "job-7"
        assert line["shop_id"] == "shop-9"
        assert len(line["span_id"]) == 16
    text = out.getvalue()
    for secret in ("shpat_abcdef0123", "shpat_zzz", "signature=s1", "abc.def.ghi"):
        assert secret not in text
    assert lines[1]["access_token"] == MASK
    assert "ValueError" in lines[2]["exception"]
