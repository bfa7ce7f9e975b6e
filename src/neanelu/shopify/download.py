"""Stream a bulk result file, resuming after a cut with HTTP Range instead of starting over.

The file lives on a storage host: the request carries no Shopify token (the signed URL is the
credential), and the URL itself is never logged because its query string is that credential.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import httpx

from neanelu.shopify.errors import BulkOperationError, TransientError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
# A URL refused as expired is replaced this many times per file before the attempt gives up.
MAX_URL_RENEWALS = 2


@dataclass(slots=True)
class DownloadProgress:
    bytes_read: int = 0
    resumes: int = 0


async def stream_file(
    http: httpx.AsyncClient,
    url: str,
    *,
    start: int = 0,
    max_resumes: int = 20,
    progress: DownloadProgress | None = None,
    renew: Callable[[], Awaitable[str | None]] | None = None,
) -> AsyncIterator[bytes]:
    """Yield the file's bytes from offset `start`. After a connection reset or a short body the
    next request asks for `Range: bytes=<offset>-`; a server that ignores Range is detected. A
    URL the storage host refuses (expired) is replaced through `renew`, which asks Shopify for
    the operation again, and the download goes on from the same offset."""
    progress = progress or DownloadProgress()
    offset = start
    failures = renewals = 0
    while True:
        # Identity encoding: Range offsets count the bytes as stored, not as compressed on the wire.
        headers = {"Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        try:
            async with http.stream("GET", url, headers=headers) as response:
                if response.status_code in (401, 403, 404, 410):
                    refused = response.status_code
                    if renew is None or renewals >= MAX_URL_RENEWALS:
                        raise BulkOperationError(
                            f"result file refused with HTTP {refused} (expired or invalid url)",
                            retryable=True,
                        )
                    renewals += 1
                    log.warning(
                        "result file refused with HTTP %d at byte %d: asking for a fresh URL",
                        refused,
                        offset,
                    )
                    fresh = await renew()
                    if fresh is None:
                        raise BulkOperationError(
                            f"result file refused with HTTP {refused} and Shopify gives no "
                            "new URL for it",
                            retryable=True,
                        )
                    url = fresh
                    continue
                if response.status_code == 416:
                    return  # nothing left past `offset`
                if response.status_code >= 500:
                    raise TransientError(f"result file: HTTP {response.status_code}")
                if offset and response.status_code != 206:
                    raise TransientError("result host ignored the Range request")
                expected = _expected_length(response, offset)
                async for chunk in response.aiter_raw(CHUNK):
                    offset += len(chunk)
                    progress.bytes_read += len(chunk)
                    yield chunk
                if expected is None or offset >= expected:
                    return
                raise TransientError(f"result file ended at byte {offset} of {expected}")
        except (httpx.TransportError, TransientError) as exc:
            failures += 1
            if failures > max_resumes:
                raise TransientError(
                    f"download failed after {max_resumes} resumes: {exc}"
                ) from None
            progress.resumes += 1
            await asyncio.sleep(min(5.0, 0.1 * 2 ** min(failures, 6)))


def _expected_length(response: httpx.Response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1]
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None
