"""Serving bulk files from signed, expiring URLs, the way Google Cloud Storage answers Shopify's links.

A result file is one or more parts on disk, served as their concatenation: a big export written by
several processes (`bulk_shards`) leaves one part per writer, and joining them into one file was a
serial copy of about a gigabyte after the writers had finished, the last seconds of a 1M export. The
response reads a megabyte at a time across the parts, answers one byte range as Cloud Storage does
(`bytes=a-b`, `bytes=a-`, `bytes=-n`; 206 with Content-Range, 416 past the end; several ranges or an
invalid header get the whole object with 200), and HEAD gets the headers alone. The reset fault sends
a prefix of the promised bytes and then drops the connection, which is what a client sees when a
download dies midway.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from shopify_emulator.bulk import BulkRunner, sign
from shopify_emulator.state import EmulatorState
from shopify_emulator.storage_errors import gcs_error

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [start, end) of the object; `ranged` when they answer a Range header (206)."""

    start: int
    end: int
    ranged: bool


def requested_span(header: str, size: int) -> Span | None:
    """The span a Range header asks for, or None when no byte of the object is in it (416)."""
    whole = Span(0, size, ranged=False)
    if not header.startswith("bytes=") or "," in header:
        return whole
    first, sep, last = header[6:].strip().partition("-")
    first, last = first.strip(), last.strip()
    if not sep or not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()):
        return whole
    if last and not last.isdigit():
        return whole
    if not first:  # the last n bytes
        count = int(last)
        return Span(max(0, size - count), size, ranged=True) if count else None
    start = int(first)
    if last and int(last) < start:
        return whole  # not a valid range (RFC 9110 14.1.1): the header is ignored
    if start >= size:
        return None
    return Span(start, size if not last else min(size, int(last) + 1), ranged=True)


class PartsFile:
    """An ASGI response: bytes [span.start, span.end) of the parts' concatenation. With `cut_after`
    it promises them all and sends only that many, then drops the connection."""

    def __init__(
        self,
        parts: Sequence[tuple[str, int]],
        span: Span,
        headers: dict[str, str],
        head_only: bool = False,
        cut_after: int | None = None,
    ) -> None:
        self.parts = parts
        self.span = span
        self.headers = headers
        self.head_only = head_only
        self.cut_after = cut_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        span, total = self.span, sum(size for _, size in self.parts)
        headers = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        headers += [
            (b"content-length", str(span.end - span.start).encode()),
            (b"accept-ranges", b"bytes"),
        ]
        if span.ranged:
            headers.append(
                (b"content-range", f"bytes {span.start}-{span.end - 1}/{total}".encode())
            )
        status = 206 if span.ranged else 200
        await send({"type": "http.response.start", "status": status, "headers": headers})
        if self.head_only:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        remaining = span.end - span.start
        if self.cut_after is not None:
            remaining = min(remaining, self.cut_after)
        offset = 0  # where the current part starts in the object
        for path, size in self.parts:
            if remaining <= 0:
                break
            if offset + size <= span.start:
                offset += size
                continue
            async with await anyio.open_file(path, "rb") as handle:
                await handle.seek(max(0, span.start - offset))
                while remaining > 0:
                    chunk = await handle.read(min(CHUNK, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            offset += size
        if self.cut_after is not None:
            # Returning without the final body message makes the server close the connection mid-body.
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _sizes(paths: Sequence[str]) -> list[tuple[str, int]] | None:
    try:
        return [(path, os.stat(path).st_size) for path in paths]
    except FileNotFoundError:
        return None


def _unsatisfiable(total: int) -> Response:
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        "<Error><Code>InvalidRange</Code><Message>The requested range cannot be satisfied.</Message>"
        "</Error>"
    )
    return Response(
        body,
        status_code=416,
        media_type="application/xml",
        headers={"Content-Range": f"bytes */{total}"},
    )


async def serve_file(
    request: Request, state: EmulatorState, bulk: BulkRunner
) -> Response | PartsFile:
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
    parts = None if found is None else await anyio.to_thread.run_sync(_sizes, found[0].paths)
    if found is None or parts is None:
        return gcs_error("NoSuchKey", "The specified key does not exist.", path)
    op = found[0]
    total = sum(size for _, size in parts)
    span = requested_span(request.headers.get("range", ""), total)
    if span is None:
        return _unsatisfiable(total)
    headers = {
        "Content-Type": content_type or "application/jsonl",
        "Content-Disposition": content_disposition,
        "Cache-Control": "private, max-age=0",
    }
    cut = state.shops[op.shop].faults.take("reset_download") if request.method == "GET" else None
    return PartsFile(
        parts,
        span,
        headers,
        head_only=request.method == "HEAD",
        cut_after=None if cut is None else int(cut.params.get("after_bytes", 65536)),
    )
