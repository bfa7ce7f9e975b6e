"""With tracing off (no provider installed), `span` takes a short cut past the API's proxy tracer;
what code inside sees must stay what the no-op tracer gives: the parent's ids as the current span,
for the log lines and for the headers of jobs enqueued inside. A fresh process, so no test has
installed a provider before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanKind
    from neanelu.telemetry import extract_context, inject_headers, span
    from neanelu.telemetry.tracing import current_trace_ids

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    ctx = extract_context({"traceparent": parent})
    with span("job x", {"a": 1, "b": None}, kind=SpanKind.CONSUMER, context=ctx) as s:
        assert isinstance(s, NonRecordingSpan) and not s.is_recording()
        assert trace.get_current_span() is s
        assert current_trace_ids() == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
        assert inject_headers()["traceparent"] == parent
        with span("inner") as inner:
            assert current_trace_ids() == ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    assert current_trace_ids() is None and inject_headers() == {}
    try:
        with span("failing", context=ctx):
            raise KeyError("boom")
    except KeyError:
        pass
    else:
        raise AssertionError("the exception was swallowed")
    assert current_trace_ids() is None
    with span("root"):
        assert current_trace_ids() is None
    print("ok")
    """
)


def test_untraced_span_carries_the_parent_ids() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
