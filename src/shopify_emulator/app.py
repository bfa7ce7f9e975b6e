"""The ASGI application: Shopify's routes chosen by the `Host` header, plus files and the control API."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from shopify_emulator import oauth
from shopify_emulator.admin import AdminApi
from shopify_emulator.bulk import BUCKET, OUTPUTS, BulkRunner
from shopify_emulator.config import EmulatorConfig
from shopify_emulator.control import ControlApi
from shopify_emulator.files import serve_file
from shopify_emulator.staged import STAGING_BUCKET
from shopify_emulator.state import EmulatorState, ShopState
from shopify_emulator.webhooks import Dispatcher

ShopHandler = Callable[[Request, ShopState], Awaitable[Response]]


def create_app(config: EmulatorConfig) -> Starlette:
    state = EmulatorState(config)
    dispatcher = Dispatcher(state)
    bulk = BulkRunner(state, dispatcher)
    admin = AdminApi(state, bulk, dispatcher)
    control = ControlApi(state, dispatcher)

    def by_host(handler: ShopHandler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            shop = state.shop_for_host(request.headers.get("host"))
            if shop is None:
                return oauth.not_found()
            return await handler(request, shop)

        return endpoint

    async def authorize(request: Request, shop: ShopState) -> Response:
        return await oauth.authorize(request, state, shop)

    async def token(request: Request, shop: ShopState) -> Response:
        return await oauth.access_token(request, state, shop)

    async def scopes(request: Request, shop: ShopState) -> Response:
        return await oauth.access_scopes(request, state, shop)

    async def files(request: Request) -> Any:
        return await serve_file(request, state, bulk)

    async def bad_request(request: Request, exc: Exception) -> Response:
        return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Big shops build their timestamp index in the background from the start, so no request waits
        # for it (small ones build it on first use, in milliseconds).
        for shop in state.shops.values():
            if shop.catalog.generated >= config.bulk_shard_min_products:
                shop.catalog.index.warming = True
                threading.Thread(
                    target=shop.catalog.index.warm, name=f"index-{shop.config.name}", daemon=True
                ).start()
        yield
        await dispatcher.close()
        bulk.cleanup()

    routes = [
        Route("/admin/oauth/authorize", by_host(authorize)),
        Route("/admin/oauth/access_token", by_host(token), methods=["POST"]),
        Route("/admin/oauth/access_scopes.json", by_host(scopes)),
        Route("/admin/api/{version}/graphql.json", by_host(admin.graphql), methods=["POST"]),
        Route("/admin/api/{version}/shop.json", by_host(admin.shop_json)),
        Route(f"/{BUCKET}/{OUTPUTS}/{{key}}", files, methods=["GET", "HEAD"]),
        Route(f"/{STAGING_BUCKET}", bulk.staged.receive, methods=["POST"]),
        Route(f"/{STAGING_BUCKET}/{{key:path}}", bulk.staged.receive, methods=["PUT"]),
        *control.routes(),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ValueError: bad_request,
            KeyError: bad_request,
            TypeError: bad_request,
            msgspec.DecodeError: bad_request,
        },
    )
    app.state.emulator = state
    app.state.dispatcher = dispatcher
    app.state.bulk = bulk
    return app
