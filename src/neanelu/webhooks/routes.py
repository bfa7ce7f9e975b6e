"""`POST /api/webhooks`: verify, record once, queue, answer at once."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from itertools import accumulate
from typing import Any

import msgspec
import psycopg
from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from neanelu.runtime import Runtime, app_secrets
from neanelu.shopify.hmac import verify_webhook
from neanelu.shopify.oauth import InvalidShopDomain, normalize_shop_domain
from neanelu.shops import repository as shops
from neanelu.web.deps import get_runtime
from neanelu.webhooks import headers, topics
from neanelu.webhooks.repository import NewDelivery
from neanelu.webhooks.service import InboxWriter, ShopDirectory

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])

# Shopify's payloads nest a few levels (product -> variants -> options); this much depth is an
# attack on the parsers (msgspec and PostgreSQL recurse) rather than a delivery.
MAX_JSON_DEPTH = 64


async def get_directory(request: Request) -> ShopDirectory:
    directory = getattr(request.app.state, "shop_directory", None)
    if not isinstance(directory, ShopDirectory):
        directory = request.app.state.shop_directory = ShopDirectory()
    return directory


async def get_inbox_writer(request: Request) -> InboxWriter:
    writer = getattr(request.app.state, "inbox_writer", None)
    if not isinstance(writer, InboxWriter):
        writer = request.app.state.inbox_writer = InboxWriter()
    return writer


@dataclass(frozen=True, slots=True)
class _Ingress:
    """What every delivery needs from the app, resolved once per process rather than once per
    request (the app state's attributes, the secrets read out of the settings)."""

    runtime: Runtime
    directory: ShopDirectory
    writer: InboxWriter
    secrets: tuple[str, ...]
    max_body_bytes: int


async def _ingress(request: Request) -> _Ingress:
    state = request.app.state
    ingress = getattr(state, "webhook_ingress", None)
    runtime = await get_runtime(request)
    if not isinstance(ingress, _Ingress) or ingress.runtime is not runtime:
        ingress = state.webhook_ingress = _Ingress(
            runtime=runtime,
            directory=await get_directory(request),
            writer=await get_inbox_writer(request),
            secrets=app_secrets(runtime.settings),
            max_body_bytes=runtime.settings.webhook_max_body_bytes,
        )
    return ingress


@lru_cache(maxsize=10_000)
def _shop_domain(value: str) -> str:
    # The same few thousand header values come again and again; the regexes run once for each.
    return normalize_shop_domain(value)


class _Refused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def _refuse(exc: _Refused) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code)


async def _read_body(request: Request, declared: str | None, limit: int) -> bytes:
    if declared is not None:
        if not declared.isdigit():
            raise _Refused(status.HTTP_400_BAD_REQUEST, "Content-Length is not a number")
        if int(declared) > limit:
            raise _Refused(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
    # Straight from the ASGI channel: a delivery's body comes in one message or a few, and
    # Starlette's stream() wraps each in an async generator step of its own.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Refused(status.HTTP_413_CONTENT_TOO_LARGE, f"body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _triggered_at(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        raise _Refused(
            status.HTTP_400_BAD_REQUEST, f"header {name} is not an ISO 8601 time"
        ) from None
    if stamp.tzinfo is None:
        raise _Refused(status.HTTP_400_BAD_REQUEST, f"header {name} has no UTC offset")
    return stamp


_object_decoder = msgspec.json.Decoder(dict[str, msgspec.Raw])


def _json_object(body: bytes) -> bytes:
    # Values stay raw: the whole body is still checked to be valid JSON, but only the top level
    # is built into Python objects; the handler decodes what it needs later.
    try:
        _object_decoder.decode(body)
    except RecursionError:
        raise _Refused(status.HTTP_400_BAD_REQUEST, _TOO_DEEP) from None
    except msgspec.ValidationError:
        raise _Refused(status.HTTP_400_BAD_REQUEST, "body is not a JSON object") from None
    except msgspec.DecodeError:
        raise _Refused(status.HTTP_400_BAD_REQUEST, "body is not JSON") from None
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise _Refused(status.HTTP_400_BAD_REQUEST, "body is not UTF-8") from None
    if b"\\u0000" in body:
        # PostgreSQL's jsonb cannot hold a NUL character.
        raise _Refused(status.HTTP_400_BAD_REQUEST, "body contains a NUL character")
    # Nesting needs an opening bracket per level: a body with few of them (every real delivery)
    # skips the scan.
    if body.count(b"{") + body.count(b"[") > MAX_JSON_DEPTH and _depth(body) > MAX_JSON_DEPTH:
        raise _Refused(status.HTTP_400_BAD_REQUEST, _TOO_DEEP)
    return body


_TOO_DEEP = f"body nests deeper than {MAX_JSON_DEPTH} levels"
# Possessive: linear on the valid JSON it runs on (the decoder has accepted the body by then).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"')
_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def _depth(body: bytes) -> int:
    """How deep arrays and objects nest: brackets outside strings, counted in C where it can."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _BRACKETS)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "recorded (or a duplicate of a recorded delivery)"},
    400: {"description": "a required header is missing, or the body is not a JSON object"},
    401: {"description": "X-Shopify-Hmac-Sha256 (or shopify-hmac-sha256) is missing or wrong"},
    404: {"description": "the shop is not known here"},
    410: {"description": "the shop uninstalled the app"},
    413: {"description": "the body is larger than WEBHOOK_MAX_BODY_BYTES"},
}


def _unknown_shop(topic: str, domain: str) -> Response:
    """A delivery for a shop not known here (never installed, or purged already)."""
    if topic in topics.COMPLIANCE:
        # Nothing is held for it, as after a repeated shop/redact: the request is fulfilled, and
        # answering so stops Shopify from sending it again.
        log.info("%s for %s: no data held for this shop", topic, domain)
        return Response(status_code=status.HTTP_200_OK)
    return _refuse(_Refused(status.HTTP_404_NOT_FOUND, "shop is not installed here"))


@router.post(
    "/api/webhooks/compliance",
    status_code=status.HTTP_200_OK,
    response_class=Response,
    summary="Receive Webhook (compliance address)",
    responses=_RESPONSES,
)
@router.post(
    "/api/webhooks",
    status_code=status.HTTP_200_OK,
    response_class=Response,
    responses=_RESPONSES,
)
async def receive_webhook(request: Request) -> Response:
    """Shopify's webhook deliveries (every topic, including the compliance topics)."""
    # The hot path reads its parts straight from app state: resolving dependencies costs more
    # per request than everything else this endpoint does before its insert.
    ingress = await _ingress(request)
    rt, directory, writer = ingress.runtime, ingress.directory, ingress.writer
    try:
        # Everything that needs no body is checked before a byte of it is buffered.
        fields = headers.by_name(request.scope["headers"])
        family = headers.family_of(fields)
        if family is None:
            raise _Refused(status.HTTP_401_UNAUTHORIZED, "header X-Shopify-Hmac-Sha256 is missing")
        try:
            found_headers = headers.read(fields, family)
        except headers.HeaderError as exc:
            raise _Refused(status.HTTP_400_BAD_REQUEST, str(exc)) from None
        try:
            domain = _shop_domain(found_headers.shop_domain)
        except InvalidShopDomain:
            raise _Refused(
                status.HTTP_400_BAD_REQUEST,
                f"header {family.name('Shop-Domain')} is not a shop domain",
            ) from None
        triggered_at = _triggered_at(found_headers.triggered_at, family.name("Triggered-At"))
        body = await _read_body(request, fields.get("content-length"), ingress.max_body_bytes)
        if not verify_webhook(body, found_headers.signature, ingress.secrets):
            raise _Refused(
                status.HTTP_401_UNAUTHORIZED, f"{family.name('Hmac-Sha256')} does not match"
            )
        topic = found_headers.topic
        delivery = NewDelivery(
            topic=topic,
            webhook_id=found_headers.webhook_id,
            event_id=found_headers.event_id,
            api_version=found_headers.api_version,
            triggered_at=triggered_at,
            payload=_json_object(body),
        )
        found = await directory.lookup(rt.pool, domain)
        if found is None:
            return _unknown_shop(topic, domain)
        shop_id, shop_status = found
        if shop_status == shops.UNINSTALLED and topic not in topics.AFTER_UNINSTALL:
            raise _Refused(status.HTTP_410_GONE, "shop has uninstalled the app")
        try:
            await writer.record(rt.pool, shop_id, delivery)
        except psycopg.errors.ForeignKeyViolation:
            # Purged between the cached lookup and the insert.
            directory.forget(domain)
            return _unknown_shop(topic, domain)
    except _Refused as exc:
        return _refuse(exc)
    except ClientDisconnect:
        # The sender went away mid-body: nothing was recorded, and Shopify retries what it
        # did not see answered. One line, not a traceback.
        log.info("webhook delivery abandoned by the client before its body arrived")
        return Response(status_code=status.HTTP_400_BAD_REQUEST)
    return Response(status_code=status.HTTP_200_OK)
