"""What the queue reports about itself: a span, log context and metrics around each job run, and
a sampler that turns Redis' view of each queue into gauges.

The trace context travels in the job's headers (`traceparent`), written at enqueue by
`TaskHandle.spec`, so the worker's span continues the request that enqueued the job, through the
outbox and across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from prometheus_client.metrics import Counter as CounterChild

from neanelu.queue import redis_keys
from neanelu.queue.client import QueueClient
from neanelu.queue.jobs import FailResult, Job
from neanelu.telemetry import bind_job, current_metrics, extract_context, inject_headers, span
from neanelu.telemetry.metrics import Metrics
from neanelu.telemetry.tracing import JOB_ID, SHOP_ID

log = logging.getLogger(__name__)

# When the job was due (ms since the epoch): enqueue time plus its delay. Wait time is measured
# from here to the worker's start, across the outbox and any process.
DUE_HEADER = "neanelu-due-ms"
SAMPLE_INTERVAL_S = 15.0
_EVENT_PAGE = 1000
_EVENT_PAGES_MAX = 20


def job_headers(headers: Mapping[str, str] | None, delay_s: float) -> dict[str, str]:
    """Headers given by the caller are kept as they are; otherwise the current trace context and
    the due time."""
    if headers is not None:
        return dict(headers)
    return inject_headers({DUE_HEADER: str(round(time.time() * 1000 + delay_s * 1000))})


class _TaskMetrics:
    """One task's series, looked up once: `labels()` takes a lock and builds a key on each call,
    and a job run used five of them."""

    __slots__ = ("finished", "metrics", "run", "running", "wait")

    def __init__(self, m: Metrics, queue: str, task: str) -> None:
        self.metrics = m
        self.wait = m.queue_wait.labels(queue)
        self.running = m.worker_running.labels(queue)
        self.run = m.queue_run.labels(queue, task)
        # By outcome, each made on its first use (as `labels()` would make it).
        self.finished: dict[str, CounterChild] = {}


_task_metrics: dict[tuple[str, str], _TaskMetrics] = {}


def _metrics_for(job: Job) -> _TaskMetrics:
    m = current_metrics()
    cached = _task_metrics.get((job.queue, job.task))
    # Rebuilt when the process's metrics were replaced (tests install their own).
    if cached is None or cached.metrics is not m:
        cached = _task_metrics[(job.queue, job.task)] = _TaskMetrics(m, job.queue, job.task)
    return cached


@dataclass(slots=True)
class JobRun:
    job: Job
    span: Span
    series: _TaskMetrics
    started: float = field(default_factory=time.perf_counter)
    outcome: str | None = None

    def _finish(self, outcome: str) -> None:
        if self.outcome is None:
            self.outcome = outcome
            seconds = time.perf_counter() - self.started
            self.series.run.observe(seconds)
            log.debug("job %s %s in %.3fs", self.job.task, outcome, seconds)

    def completed(self, acked: bool) -> None:
        self._finish("completed" if acked else "lost")

    def deferred(self, *, throttled: bool) -> None:
        self._finish("throttled" if throttled else "deferred")
        if throttled:
            current_metrics().queue_throttles.labels(self.job.queue).inc()

    def failed(self, result: FailResult, error: BaseException | None = None) -> None:
        outcome = {
            FailResult.RETRY: "retry",
            FailResult.DEAD: "dead",
            FailResult.FAILED: "failed",
            FailResult.STALE: "lost",
        }[result]
        self._finish(outcome)
        m = current_metrics()
        if result is FailResult.RETRY:
            m.queue_retries.labels(self.job.queue).inc()
        elif result is FailResult.DEAD:
            m.queue_dead_lettered.labels(self.job.queue).inc()
        if error is not None and self.span.is_recording():
            self.span.record_exception(error)
            self.span.set_status(Status(StatusCode.ERROR, type(error).__name__))


@contextmanager
def job_run(job: Job) -> Iterator[JobRun]:
    """Around one handler run: the job's span (child of the enqueuing trace), its ids in every log
    line, the wait and run time, the outcome."""
    series = _metrics_for(job)
    due = job.headers.get(DUE_HEADER, "")
    if due.isdigit() and job.attempt == 1:
        series.wait.observe(max(0.0, time.time() - int(due) / 1000))
    series.running.inc()
    run: JobRun | None = None
    try:
        with (
            span(
                f"job {job.task}",
                _job_attributes(job),
                kind=SpanKind.CONSUMER,
                context=extract_context(job.headers),
            ) as current,
            bind_job(job.id, shop_id=job.group, queue=job.queue, task=job.task),
        ):
            run = JobRun(job, current, series)
            try:
                yield run
            except asyncio.CancelledError:
                run._finish("cancelled")
                raise
            run._finish("completed")
    finally:
        series.running.dec()
        if run is not None and run.outcome is not None:
            finished = series.finished.get(run.outcome)
            if finished is None:
                finished = series.finished[run.outcome] = series.metrics.queue_finished.labels(
                    job.queue, job.task, run.outcome
                )
            finished.inc()


def _job_attributes(job: Job) -> dict[str, AttributeValue | None]:
    return {
        JOB_ID: job.id,
        SHOP_ID: job.group,
        "messaging.system": "neanelu",
        "messaging.destination.name": job.queue,
        "neanelu.task": job.task,
        "neanelu.attempt": job.attempt,
    }


class QueueSampler:
    """Reads each queue's counts from Redis every few seconds into `neanelu_queue_jobs`, and
    counts stalls from the queue's event stream. Every worker samples the same global values, so
    dashboards take `max by (queue)`."""

    def __init__(self, client: QueueClient, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.client = client
        self.interval_s = interval_s
        self._last_event: dict[str, str] = {}

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sample_once()
            except Exception:
                log.warning("queue sampling failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval_s)

    async def sample_once(self) -> None:
        m = current_metrics()
        redis = self.client.redis
        for name in self.client.names:
            queue = self.client.queue(name)
            counts = await queue.counts()
            sizes = await redis.hvals(queue.key(redis_keys.GROUP_SIZE))
            unfinished = sum(int(v) for v in sizes)
            waiting = max(0, unfinished - counts.active - counts.delayed)
            for state, value in (
                ("waiting", waiting),
                ("active", counts.active),
                ("delayed", counts.delayed),
                ("dead", counts.dead_letter),
                ("failed", counts.failed_set),
            ):
                m.queue_jobs.labels(name, state).set(value)
            stalls = await self._new_stalls(name, queue.key(redis_keys.EVENTS))
            if stalls:
                m.queue_stalls.labels(name).inc(stalls)

    async def _new_stalls(self, name: str, stream: str) -> int:
        redis = self.client.redis
        last = self._last_event.get(name)
        if last is None:
            # Start from now: stalls before this process started were counted by someone else.
            newest = await redis.xrevrange(stream, count=1) or []
            first = newest[0][0] if newest else None
            self._last_event[name] = _text(first) if first is not None else "0-0"
            return 0
        stalls = 0
        for _ in range(_EVENT_PAGES_MAX):
            page = await redis.xrange(stream, min=f"({last}", count=_EVENT_PAGE) or []
            for event_id, fields in page:
                if event_id is None or fields is None:
                    continue
                last = _text(event_id)
                if fields.get(b"e", fields.get("e")) in (b"stalled", "stalled"):
                    stalls += 1
            if len(page) < _EVENT_PAGE:
                break
        self._last_event[name] = last
        return stalls


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
