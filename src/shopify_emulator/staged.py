"""Staged uploads: `stagedUploadsCreate` targets and the storage endpoint that receives the files.

Shopify hands out a Google Cloud Storage target: for `POST`, a form (`key`, `policy`, `x-goog-*`
fields, then the file); for `PUT`, a signed URL that takes the raw body. The emulator answers both on
`/{STAGING_BUCKET}` with the same checks storage makes (a signature over the key and the expiry), keeps
the files in its bulk directory, and `bulkOperationRunMutation(stagedUploadPath: key)` reads them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import quote

import anyio
from starlette.requests import Request
from starlette.responses import Response

from shopify_emulator.clock import Clock
from shopify_emulator.context import Context
from shopify_emulator.storage_errors import gcs_error

STAGING_BUCKET = "shopify-staged-uploads"
UPLOAD_TTL_S = 3600
MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # Shopify's limit for bulk mutation variables


class StagedFiles:
    """Where uploaded files live, by storage key."""

    def __init__(self, directory: str, key: bytes, clock: Clock) -> None:
        self.directory = os.path.join(directory, "staged")
        os.makedirs(self.directory, exist_ok=True)
        self.key = key
        self.clock = clock

    def path(self, storage_key: str) -> str:
        return os.path.join(self.directory, hashlib.sha256(storage_key.encode()).hexdigest())

    def exists(self, storage_key: str) -> bool:
        return os.path.exists(self.path(storage_key))

    def signature(self, storage_key: str, expires: int) -> str:
        message = f"{storage_key}\n{expires}".encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    # -- stagedUploadsCreate ------------------------------------------------------------------------

    def targets(self, ctx: Context, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        targets, errors = [], []
        for n, item in enumerate(inputs):
            size = item.get("fileSize")
            if size is not None and int(size) > MAX_UPLOAD_BYTES:
                errors.append(
                    {"field": ["input", str(n), "fileSize"], "message": "File size is too big."}
                )
                continue
            targets.append(self._target(ctx, item))
        return {"stagedTargets": targets, "userErrors": errors}

    def _target(self, ctx: Context, item: dict[str, Any]) -> dict[str, Any]:
        storage_key = f"tmp/{ctx.shop.shop_id}/bulk/{secrets.token_hex(16)}/{os.path.basename(item['filename'])}"
        expires = int(self.clock.time()) + UPLOAD_TTL_S
        signature = self.signature(storage_key, expires)
        base = f"{ctx.base_url}/{STAGING_BUCKET}"
        if item.get("httpMethod") == "POST":
            policy = base64.b64encode(
                json.dumps({"conditions": [{"key": storage_key}], "expiration": expires}).encode()
            ).decode()
            parameters = [
                ("Content-Type", item["mimeType"]),
                ("success_action_status", "201"),
                ("acl", "private"),
                ("key", storage_key),
                ("x-goog-date", time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.time()))),
                ("x-goog-credential", "merchant-assets@shopify-tiers.iam.gserviceaccount.com"),
                ("x-goog-algorithm", "GOOG4-HMAC-SHA256"),
                ("x-goog-expires", str(expires)),
                ("x-goog-signature", signature),
                ("policy", policy),
            ]
            return {
                "url": base,
                "resourceUrl": None,
                "parameters": [{"name": k, "value": v} for k, v in parameters],
            }
        url = (
            f"{base}/{quote(storage_key)}?X-Goog-Algorithm=GOOG4-HMAC-SHA256"
            f"&X-Goog-Expires={expires}&X-Goog-Signature={signature}"
        )
        return {
            "url": url,
            "resourceUrl": None,
            "parameters": [
                {"name": "content_type", "value": item["mimeType"]},
                {"name": "acl", "value": "private"},
            ],
        }

    # -- the storage endpoint -------------------------------------------------------------------------

    async def receive(self, request: Request) -> Response:
        body: bytes | None
        if request.method == "PUT":
            storage_key = request.path_params.get("key", "")
            expires = request.query_params.get("X-Goog-Expires", "")
            signature = request.query_params.get("X-Goog-Signature", "")
            body = await request.body()
        else:
            fields, body = _form(request.headers.get("content-type", ""), await request.body())
            storage_key = fields.get("key", "")
            expires = fields.get("x-goog-expires", "")
            signature = fields.get("x-goog-signature", "")
        refused = self._refusal(storage_key, expires, signature, body)
        if refused is not None:
            return refused
        assert body is not None
        await anyio.Path(self.path(storage_key)).write_bytes(body)
        if request.method == "PUT":
            return Response(status_code=200)
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        xml = (
            "<?xml version='1.0' encoding='UTF-8'?><PostResponse>"
            f"<Location>{request.url}/{quote(storage_key)}</Location><Bucket>{STAGING_BUCKET}</Bucket>"
            f'<Key>{storage_key}</Key><ETag>"{etag}"</ETag></PostResponse>'
        )
        return Response(xml, status_code=201, media_type="application/xml")

    def _refusal(
        self, storage_key: str, expires: str, signature: str, body: bytes | None
    ) -> Response | None:
        if not storage_key or not expires.isdigit() or body is None:
            return Response(
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>InvalidArgument</Code>"
                "<Message>Invalid argument.</Message><Details>key, policy and file are required</Details></Error>",
                status_code=400,
                media_type="application/xml",
            )
        if not hmac.compare_digest(self.signature(storage_key, int(expires)), signature):
            return gcs_error(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
                "Check your Google secret key and signing method.",
            )
        if int(expires) < self.clock.time():
            return gcs_error("ExpiredToken", "The provided token has expired.", expires)
        if len(body) > MAX_UPLOAD_BYTES:
            return Response(
                "<?xml version='1.0' encoding='UTF-8'?><Error><Code>EntityTooLarge</Code>"
                "<Message>Your proposed upload is larger than the maximum object size specified in your Policy Document.</Message></Error>",
                status_code=400,
                media_type="application/xml",
            )
        return None


def _form(content_type: str, body: bytes) -> tuple[dict[str, str], bytes | None]:
    """The text fields and the `file` part of a multipart/form-data body (the stdlib's MIME parser)."""
    if not content_type.startswith("multipart/form-data"):
        return {}, None
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    fields: dict[str, str] = {}
    upload: bytes | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if name == "file":
            upload = payload
        else:
            fields[name] = payload.decode()
    return fields, upload
