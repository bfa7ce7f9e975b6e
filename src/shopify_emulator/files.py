"""Serving bulk files from signed, expiring URLs, the way Google Cloud Storage answers Shopify's links.

The normal path is Starlette's FileResponse (sendfile-style chunks, HTTP Range for resumed downloads), so
serving is never the slow part of an ingest. The reset fault sends a prefix of the promised bytes and
then drops the connection, which is what a client sees when a download dies midway.
"""

from __future__ import annotations

import hmac

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from shopify_emulator.bulk import BulkRunner, sign
from shopify_emulator.state import EmulatorState
from shopify_emulator.storage_errors import gcs_error

CHUNK = 256 * 1024


class CutDownload:
    """An ASGI response that promises the whole (range of the) file and delivers only a prefix."""

    def __init__(self, path: str, start: int, after_bytes: int, ranged: bool) -> None:
        self.path = path
        self.start = start
        self.after_bytes = after_bytes
        self.ranged = ranged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = (await anyio.Path(self.path).stat()).st_size
        length = size - self.start
        headers = [
            (b"content-type", b"application/jsonl"),
            (b"content-length", str(length).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if self.ranged:
            headers.append((b"content-range", f"bytes {self.start}-{size - 1}/{size}".encode()))
        await send(
            {
                "type": "http.response.start",
                "status": 206 if self.ranged else 200,
                "headers": headers,
            }
        )
        remaining = min(self.after_bytes, length)
        async with await anyio.open_file(self.path, "rb") as handle:
            await handle.seek(self.start)
            while remaining > 0:
                chunk = await handle.read(min(CHUNK, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        # Returning without the final body message makes the server close the connection mid-body.


def _range_start(request: Request) -> int | None:
    header = request.headers.get("range", "")
    if not header.startswith("bytes="):
        return None
    first = header[6:].split(",", 1)[0].split("-", 1)[0].strip()
    return int(first) if first.isdigit() else None


async def serve_file(
    request: Request, state: EmulatorState, bulk: BulkRunner
) -> Response | CutDownload:
    """`GET /{bucket}/bulk-operation-outputs/{key}-final?GoogleAccessId&Expires&Signature&...`"""
    params = request.query_params
    expires_raw = params.get("Expires", "")
    signature = params.get("Signature", "")
    content_disposition = params.get("response-content-disposition", "")
    content_type = params.get("response-content-type", "")
    path = request.url.path
    if not expires_raw.lstrip("-").isdigit() or not signature or not params.get("GoogleAccessId"):
        return gcs_error(
            "MissingSecurityHeader",
            "Your request was missing a required header.",
            "Authorization",
        )
    expires = int(expires_raw)
    expected = sign(state.signing_key, path, expires, content_disposition, content_type)
    if not hmac.compare_digest(expected, signature):
        return gcs_error(
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
            "Check your Google secret key and signing method.",
        )
    if expires < state.clock.time():
        return gcs_error(
            "ExpiredToken",
            "The provided token has expired.",
            f"Request signature expired at: {expires}",
        )
    found = bulk.find(request.path_params["key"])
    if found is None or not await anyio.Path(found[0].path).exists():
        return gcs_error("NoSuchKey", "The specified key does not exist.", path)
    op = found[0]
    shop = state.shops[op.shop]
    headers = {"Content-Disposition": content_disposition, "Cache-Control": "private, max-age=0"}
    cut = shop.faults.take("reset_download")
    if cut is not None and request.method == "GET":
        start = _range_start(request)
        return CutDownload(
            op.path, start or 0, int(cut.params.get("after_bytes", 65536)), start is not None
        )
    return FileResponse(op.path, media_type=content_type or "application/jsonl", headers=headers)
