"""The HTTP server: uvicorn, with the bounds on slow and oversized requests it lacks.

uvicorn has a keep-alive timeout and a concurrency limit, but with httptools no bound on how long
a client may take to send its headers or its body, nor on how large the headers may grow (the
parser buffers a header value however long it is). A connection that sends nothing, or one byte
every few seconds, would stay open for ever, and each one holds memory. The protocol here adds:

- a header deadline from the connection (or the first byte of the next request) until the headers
  are complete: past it the client gets `408` and the connection is closed;
- a body deadline from the end of the headers until the last body byte: the same;
- a cap on the bytes of the request line and headers: past it `431`, before more is buffered;
- a cap on open connections: past it a new connection is closed at once, before it costs a byte.

Keep-alive and concurrency come from uvicorn's own settings. A reverse proxy in front should still
bound requests per client (see the README), which no single process can do.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from uvicorn.supervisors import ChangeReload, Multiprocess

from neanelu.config import Settings

log = logging.getLogger(__name__)
# Under a flood a line per refused connection would be a flood of its own: one per interval.
REFUSAL_LOG_INTERVAL_S = 10.0
_refusals = {"count": 0, "logged_at": 0.0}
# After a refusal the rest of what the client sends is read and dropped for this long before the
# connection closes: closing with unread bytes would reset it, and the client could lose the
# answer (as nginx's lingering close).
LINGER_S = 2.0


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keepalive_timeout_s: int = 5
    max_header_bytes: int = 16_384
    max_connections: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            header_timeout_s=settings.http_header_timeout_s,
            body_timeout_s=settings.http_body_timeout_s,
            keepalive_timeout_s=settings.http_keepalive_timeout_s,
            max_header_bytes=settings.http_max_header_bytes,
            max_connections=settings.http_max_connections,
        )


def _plain_response(status: int, reason: str, message: str) -> bytes:
    body = message.encode("ascii")
    return (
        f"HTTP/1.1 {status} {reason}\r\n"
        "content-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    ).encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines and a header size cap."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: HttpLimits = getattr(config, "limits", None) or HttpLimits()
        self._deadline: asyncio.TimerHandle | None = None
        self._requests = 0
        # Between requests and in a request's head (not in its body): bytes count as header bytes.
        self._reading_head = True
        self._head_bytes = 0
        self._tail = b""  # the last bytes seen, for a head terminator split across reads
        self._refused = False

    # Connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Nothing read, nothing answered: the cheapest refusal there is.
            _log_refusal(len(self.connections) - 1)
            transport.close()
            return
        self._arm(self.limits.header_timeout_s, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering: read and dropped
        if self._reading_head:
            # Counted before the parser sees the bytes (it would buffer a header value however
            # long), up to the blank line that ends the head when it is in this read.
            window = self._tail + data
            end = window.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            if self._head_bytes > self.limits.max_header_bytes:
                self._refuse(
                    431,
                    "Request Header Fields Too Large",
                    f"request line and headers exceed {self.limits.max_header_bytes} bytes",
                )
                return
            self._tail = window[-3:]
        super().data_received(data)

    # Parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._requests:
            # The next request on a kept-alive connection: its headers get their own deadline
            # (the first request's runs from the connection).
            self._arm(self.limits.header_timeout_s, self._head_too_slow)
        self._requests += 1

    def on_headers_complete(self) -> None:
        self._reading_head = False
        self._arm(self.limits.body_timeout_s, self._body_too_slow)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._reading_head, self._head_bytes, self._tail = True, 0, b""

    # Deadlines
    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        self._refuse(408, "Request Timeout", "request headers not received in time")

    def _body_too_slow(self) -> None:
        self._deadline = None
        self._refuse(408, "Request Timeout", "request body not received in time")

    def _refuse(self, status: int, reason: str, message: str) -> None:
        if self._refused or self.transport.is_closing():
            return
        cycle = self.cycle
        if self._reading_head:
            # A new request's head: no response of it can be under way.
            answer = cycle is None or cycle.response_complete
        else:
            # Its body: answer unless the application already did (an early 413, say).
            answer = cycle is not None and not cycle.response_started
        if answer:
            self.transport.write(_plain_response(status, reason, message))
        if cycle is not None and not cycle.response_complete:
            # The application waiting for the body sees the client gone; its answer is dropped.
            cycle.disconnected = True
            cycle.message_event.set()
        # Debug: a slowloris run would otherwise write a line per connection.
        log.debug("HTTP connection closed: %s (%d)", message, status)
        self._refused = True
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()  # the answer, then end of stream; the client closes its side
        self.flow.resume_reading()
        self._arm(LINGER_S, self.transport.close)


def _log_refusal(open_connections: int) -> None:
    _refusals["count"] += 1
    now = time.monotonic()
    if now - _refusals["logged_at"] >= REFUSAL_LOG_INTERVAL_S:
        log.warning(
            "%d connection(s) refused: %d open, HTTP_MAX_CONNECTIONS reached",
            _refusals["count"],
            open_connections,
        )
        _refusals["count"], _refusals["logged_at"] = 0, now


class GuardedConfig(uvicorn.Config):
    """uvicorn's Config carrying the limits (a module-level class: uvicorn pickles its config
    into worker processes)."""

    def __init__(self, app: Any, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(
            app,
            http=GuardedHttpToolsProtocol,
            timeout_keep_alive=limits.keepalive_timeout_s,
            # uvicorn answers 503 once this many connections or requests in flight exist; the
            # protocol already closes connections beyond the cap, so here it bounds requests
            # still running for clients that left.
            limit_concurrency=limits.max_connections + 1,
            # Only h11 reads this; httptools is bounded by the protocol above.
            h11_max_incomplete_event_size=limits.max_header_bytes,
            **kwargs,
        )
        self.limits = limits


def run_server(config: GuardedConfig) -> bool:
    """What `uvicorn.run` does with a config it builds itself, for the config built here; False
    when a single server could not start (its port taken, say: uvicorn logged why)."""
    if not (config.reload or config.workers > 1):
        config.load_app()
    server = uvicorn.Server(config=config)
    try:
        if config.should_reload:
            ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
        elif config.workers > 1:
            Multiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            server.run()
    except KeyboardInterrupt:
        pass
    finally:
        if config.uds and os.path.exists(config.uds):
            os.remove(config.uds)
    return bool(server.started) or config.should_reload or config.workers > 1
