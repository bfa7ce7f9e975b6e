"""Observability: OpenTelemetry traces, structlog JSON logs, Prometheus metrics.

Each entrypoint calls `setup_telemetry(settings, "<service>")` once, right after building its
settings; everything else reads what it set up (the tracer provider, the process's `Metrics`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from neanelu.config import Settings
    from neanelu.telemetry.instrument import instrument_app, instrument_libraries
    from neanelu.telemetry.logging import (
        bind_job,
        bind_request,
        bind_shop,
        get_logger,
        setup_logging,
    )
    from neanelu.telemetry.metrics import (
        Metrics,
        MetricsServer,
        current_metrics,
        install_metrics,
        serve_metrics,
        setup_metrics,
    )
    from neanelu.telemetry.tracing import (
        extract_context,
        inject_headers,
        setup_tracing,
        shutdown_tracing,
        span,
    )

# Each name is imported from its module when first used: a process that only counts and traces
# (a sync, the inventory's child) never loads FastAPI's and the libraries' instrumentation, which
# `instrument` pulls in (tens of MB resident).
_WHERE = {
    "instrument_app": "instrument",
    "instrument_libraries": "instrument",
    **dict.fromkeys(
        ("bind_job", "bind_request", "bind_shop", "get_logger", "setup_logging"), "logging"
    ),
    **dict.fromkeys(
        (
            "Metrics",
            "MetricsServer",
            "current_metrics",
            "install_metrics",
            "serve_metrics",
            "setup_metrics",
        ),
        "metrics",
    ),
    **dict.fromkeys(
        ("extract_context", "inject_headers", "setup_tracing", "shutdown_tracing", "span"),
        "tracing",
    ),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


@dataclass(frozen=True, slots=True)
class Telemetry:
    tracer_provider: TracerProvider
    metrics: Metrics


def setup_telemetry(
    settings: Settings,
    service_name: str,
    *,
    logs: bool = True,
    json_logs: bool | None = None,
    exporter: SpanExporter | None = None,
) -> Telemetry:
    """Tracing, library instrumentation, metrics and (unless `logs=False`) logging for this
    process. Safe to call again: each part is built once."""
    from neanelu.telemetry.instrument import instrument_libraries
    from neanelu.telemetry.logging import setup_logging
    from neanelu.telemetry.metrics import setup_metrics
    from neanelu.telemetry.tracing import setup_tracing

    provider = setup_tracing(settings, service_name, exporter=exporter)
    instrument_libraries()
    if logs:
        setup_logging(settings, json=json_logs)
    return Telemetry(provider, setup_metrics())


__all__ = [
    "Metrics",
    "MetricsServer",
    "Telemetry",
    "bind_job",
    "bind_request",
    "bind_shop",
    "current_metrics",
    "extract_context",
    "get_logger",
    "inject_headers",
    "install_metrics",
    "instrument_app",
    "instrument_libraries",
    "serve_metrics",
    "setup_logging",
    "setup_metrics",
    "setup_telemetry",
    "setup_tracing",
    "shutdown_tracing",
    "span",
]
