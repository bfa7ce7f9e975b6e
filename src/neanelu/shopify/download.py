"""Stream a bulk result file, resuming after a cut with HTTP Range instead of starting over.

The file lives on a storage host: the request carries no Shopify token (the signed URL is the
credential), and the URL itself is never logged because its query string is that credential.

A long download over a flaky network may be cut many times; what ends it is a host that stops
giving bytes, not the number of cuts. So the budget counts the failures in a row that moved no
byte, and the time since the last byte arrived; a resume that made progress starts both afresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from neanelu.shopify.errors import BulkOperationError, TransientError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# A URL refused as expired is replaced this many times per file before the attempt gives up.
MAX_URL_RENEWALS = 2
# Failures in a row without a byte of progress before the download gives up.
MAX_IDLE_FAILURES = 10
# Seconds without a byte of progress, across resumes, before the download gives up.
MAX_IDLE_SECONDS = 300.0


@dataclass(slots=True)
class DownloadProgress:
    bytes_read: int = 0
    resumes: int = 0


async def stream_file(
    http: httpx.AsyncClient,
    url: str,
    *,
    start: int = 0,
    max_idle_failures: int = MAX_IDLE_FAILURES,
    max_idle_s: float = MAX_IDLE_SECONDS,
    progress: DownloadProgress | None = None,
    renew: Callable[[], Awaitable[str | None]] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the file's bytes from offset `start`, in chunks of up to `CHUNK` bytes. After a
    connection reset or a short body the next request asks for `Range: bytes=<offset>-`; a server
    that ignores Range is detected. A URL the storage host refuses (expired) is replaced through
    `renew`, which asks Shopify for the operation again, and the download goes on from the same
    offset."""
    progress = progress or DownloadProgress()
    offset = start
    idle_failures = renewals = 0
    last_progress = time.monotonic()
    while True:
        # Identity encoding: Range offsets count the bytes as stored, not as compressed on the wire.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        attempt_from = offset
        buffer = bytearray()
        try:
            async with http.stream("GET", url, headers=headers) as response:
                if response.status_code in (401, 403, 404, 410):
                    url = await _renewed_url(response.status_code, offset, renew, renewals)
                    renewals += 1
                    continue
                if response.status_code == 416:
                    return  # nothing left past `offset`
                if response.status_code >= 500:
                    raise TransientError(f"result file: HTTP {response.status_code}")
                if offset and response.status_code != 206:
                    raise TransientError("result host ignored the Range request")
                expected = _expected_length(response, offset)
                # Chunks are gathered here rather than by httpx's chunker, which drops the bytes
                # it holds when the connection is cut: a cut every 1 MB would then never advance.
                async for piece in response.aiter_raw():
                    buffer += piece
                    if len(buffer) >= CHUNK:
                        chunk, buffer = bytes(buffer), bytearray()
                        offset += len(chunk)
                        progress.bytes_read += len(chunk)
                        yield chunk
                if buffer:
                    chunk, buffer = bytes(buffer), bytearray()
                    offset += len(chunk)
                    progress.bytes_read += len(chunk)
                    yield chunk
                if expected is None or offset >= expected:
                    return
                raise TransientError(f"result file ended at byte {offset} of {expected}")
        except (httpx.TransportError, TransientError) as exc:
            if buffer:
                # What arrived before the cut is the file's next bytes: keep it.
                offset += len(buffer)
                progress.bytes_read += len(buffer)
                yield bytes(buffer)
            now = time.monotonic()
            if offset > attempt_from:
                idle_failures, last_progress = 0, now
            idle_failures += 1
            if idle_failures > max_idle_failures or now - last_progress > max_idle_s:
                raise TransientError(
                    f"download stopped making progress at byte {offset}: {idle_failures} failures"
                    f" in a row, {now - last_progress:.0f} s since the last byte"
                    f" ({progress.resumes} resumes in all): {exc}"
                ) from None
            progress.resumes += 1
            await asyncio.sleep(min(5.0, 0.1 * 2 ** min(idle_failures, 6)))


async def _renewed_url(
    refused: int, offset: int, renew: Callable[[], Awaitable[str | None]] | None, renewals: int
) -> str:
    """A fresh URL for a file whose storage host refused the current one (expired)."""
    if renew is None or renewals >= MAX_URL_RENEWALS:
        raise BulkOperationError(
            f"result file refused with HTTP {refused} (expired or invalid url)", retryable=True
        )
    log.warning(
        "result file refused with HTTP %d at byte %d: asking for a fresh URL", refused, offset
    )
    fresh = await renew()
    if fresh is None:
        raise BulkOperationError(
            f"result file refused with HTTP {refused} and Shopify gives no new URL for it",
            retryable=True,
        )
    return fresh


def _expected_length(response: httpx.Response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None
