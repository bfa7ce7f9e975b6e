"""The Admin API over HTTP: GraphQL and REST `shop.json`, with versions, tokens and injected faults."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from shopify_emulator import graphql_api
from shopify_emulator.bulk import BulkRunner
from shopify_emulator.config import RELEASE_CANDIDATE
from shopify_emulator.context import Context
from shopify_emulator.oauth import authenticate, not_found
from shopify_emulator.state import AccessToken, EmulatorState, ShopState
from shopify_emulator.webhooks import Dispatcher

VERSION_RE = re.compile(r"^\d{4}-(01|04|07|10)$")


def effective_version(state: EmulatorState, requested: str) -> str | None:
    """Shopify's rule: an unsupported (too old) version falls forward to the oldest supported one."""
    supported = state.config.supported_versions
    if requested == "unstable":
        return RELEASE_CANDIDATE
    if requested in supported or requested == RELEASE_CANDIDATE:
        return requested
    if VERSION_RE.match(requested) and requested < supported[0]:
        return supported[0]
    return None


def base_url(request: Request, state: EmulatorState) -> str:
    if state.config.public_base_url:
        return state.config.public_base_url.rstrip("/")
    server = request.scope.get("server")
    if server and server[1] is not None:
        return f"http://{server[0]}:{server[1]}"
    return f"http://{request.url.netloc}"


async def injected_fault(shop: ShopState) -> Response | None:
    """Infrastructure faults come before authentication, as a proxy or load balancer would answer."""
    slow = shop.faults.take("slow")
    if slow is not None:
        await asyncio.sleep(float(slow.params.get("delay_s", 1.0)))
    limited = shop.faults.take("http_429")
    if limited is not None:
        retry_after = str(limited.params.get("retry_after", "2.0"))
        return JSONResponse(
            {
                "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
            },
            status_code=429,
            headers={"Retry-After": retry_after},
        )
    failing = shop.faults.take("http_5xx")
    if failing is not None:
        status = int(failing.params.get("status", 503))
        return JSONResponse(
            {"errors": "Internal Server Error" if status == 500 else "Service Unavailable"},
            status_code=status,
        )
    return None


class AdminApi:
    def __init__(self, state: EmulatorState, bulk: BulkRunner, dispatcher: Dispatcher) -> None:
        self.state = state
        self.bulk = bulk
        self.dispatcher = dispatcher

    async def _admit(self, request: Request, shop: ShopState) -> Response | tuple[str, AccessToken]:
        """What every Admin API call goes through first: a served version, the shop's switched-on
        faults, a valid token. A Response is the refusal to send instead."""
        version = effective_version(self.state, request.path_params["version"])
        if version is None:
            return not_found()
        fault = await injected_fault(shop)
        if fault is not None:
            return fault
        token = authenticate(request, shop)
        if isinstance(token, Response):
            return token
        return version, token

    async def graphql(self, request: Request, shop: ShopState) -> Response:
        admitted = await self._admit(request, shop)
        if isinstance(admitted, Response):
            return admitted
        version, token = admitted
        try:
            body = msgspec.json.decode(await request.body())
        except msgspec.DecodeError:
            return JSONResponse({"errors": "Bad Request"}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"errors": "Bad Request"}, status_code=400)
        ctx = Context(
            state=self.state,
            shop=shop,
            app=token.app,
            scopes=token.scopes,
            api_version=version,
            bulk=self.bulk,
            dispatcher=self.dispatcher,
            base_url=base_url(request, self.state),
        )
        payload = graphql_api.run(ctx, body, self.state.config.max_query_cost)
        return _json(payload, {"X-Shopify-API-Version": version})

    async def shop_json(self, request: Request, shop: ShopState) -> Response:
        admitted = await self._admit(request, shop)
        if isinstance(admitted, Response):
            return admitted
        version, token = admitted
        bucket = shop.rest_bucket(token.app.client_id)
        if not bucket.try_take(1):
            return JSONResponse(
                {
                    "errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."
                },
                status_code=429,
                headers={"Retry-After": f"{bucket.seconds_until(1):.1f}"},
            )
        used = round(bucket.size - bucket.available)
        return _json(
            {"shop": shop.shop_json()},
            {
                "X-Shopify-Shop-Api-Call-Limit": f"{used}/{int(bucket.size)}",
                "X-Shopify-API-Version": version,
            },
        )


def _json(payload: Any, headers: dict[str, str]) -> Response:
    # msgspec keeps integers above 2^53 exact, as Shopify's JSON does.
    return Response(msgspec.json.encode(payload), media_type="application/json", headers=headers)
