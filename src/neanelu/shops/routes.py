"""`/auth/install` and `/auth/callback`: the server side of the OAuth install; and
`/auth/token-exchange`, an embedded app's install with its App Bridge session token."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Cookie, HTTPException, Query, Request, Security, status
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from neanelu.db.pool import global_scope
from neanelu.runtime import app_secrets
from neanelu.shopify.errors import ShopifyError
from neanelu.shopify.oauth import (
    InvalidShopDomain,
    OAuthError,
    authorize_url,
    normalize_shop_domain,
    timestamp_is_fresh,
    verify_callback_hmac,
)
from neanelu.shopify.session_token import InvalidSessionToken, verify_session_token
from neanelu.shops import oauth_state, repository, service
from neanelu.shops.tokens import shop_endpoint
from neanelu.web.deps import RuntimeDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/auth", tags=["install"])

_CALLBACK_REQUIRED = ("code", "hmac", "shop", "state", "timestamp")


def _storable_shop(value: str | None) -> str:
    """The shop domain, checked by the official rule before anything is requested from it."""
    try:
        domain = normalize_shop_domain(value)
    except InvalidShopDomain as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    if not domain.endswith(".myshopify.com") or "_" in domain:
        # Admin-only Shopify hosts pass the official rule but are not shops that install apps.
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "shop must be a *.myshopify.com domain")
    return domain


@router.get(
    "/install",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    responses={400: {"description": "shop is missing or not a Shopify domain"}},
)
async def install(
    rt: RuntimeDep, shop: Annotated[str | None, Query(max_length=255)] = None
) -> RedirectResponse:
    """Start the install: redirect the merchant to the shop's authorize page."""
    domain = _storable_shop(shop)
    settings = rt.settings
    state = oauth_state.new_state()
    url = authorize_url(
        shop_endpoint(settings, domain),
        client_id=settings.shopify_api_key,
        scopes=settings.shopify_scopes,
        redirect_uri=settings.app_host.rstrip("/") + "/auth/callback",
        state=state,
    )
    response = RedirectResponse(url, status_code=status.HTTP_302_FOUND)
    response.set_cookie(
        oauth_state.COOKIE_NAME,
        oauth_state.cookie_value(
            settings.shopify_api_secret.get_secret_value(), state, shop=domain
        ),
        max_age=oauth_state.STATE_TTL_S,
        httponly=True,
        samesite="lax",
        secure=settings.app_host.startswith("https://"),
        path="/auth",
    )
    return response


@router.get(
    "/callback",
    responses={
        302: {"description": "installed; redirect to the app in the shop's admin"},
        400: {"description": "a parameter, the timestamp or the state is wrong"},
        401: {"description": "the HMAC does not match"},
        502: {"description": "Shopify refused the code exchange"},
    },
)
async def callback(
    request: Request,
    rt: RuntimeDep,
    state_cookie: Annotated[str | None, Cookie(alias=oauth_state.COOKIE_NAME)] = None,
) -> JSONResponse:
    """Finish the install: verify, exchange the code, store the token, queue the first sync."""
    params = {k: v for k, v in request.query_params.items()}
    missing = [name for name in _CALLBACK_REQUIRED if not params.get(name)]
    if missing:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"missing parameter: {missing[0]}")
    domain = _storable_shop(params["shop"])
    settings = rt.settings
    if not verify_callback_hmac(params, app_secrets(settings)):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "hmac does not match")
    if not timestamp_is_fresh(params["timestamp"]):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "timestamp is outside the 90 s window")
    try:
        state = oauth_state.verify_cookie(
            state_cookie,
            params["state"],
            settings.shopify_api_secret.get_secret_value(),
            shop=domain,
        )
        await oauth_state.mark_used(rt.redis, state)
    except oauth_state.StateError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    try:
        grant = await rt.token_client.exchange_code(domain, params["code"])
    except ShopifyError as exc:
        log.warning("install of %s: code exchange failed (%s)", domain, type(exc).__name__)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, "Shopify refused the code exchange"
        ) from None
    async with global_scope(rt.pool) as conn:
        result = await service.complete_install(conn, rt.vault, domain, grant)
    await service.resume_shop_queues(rt, result.shop_id)
    log.info(
        "shop %s (%s) installed%s", result.shop_id, domain, "" if result.new_shop else " again"
    )
    endpoint = shop_endpoint(settings, domain)
    response = JSONResponse(
        {"shop": domain, "shop_id": str(result.shop_id), "status": "installed"},
        status_code=status.HTTP_302_FOUND,
        headers={"Location": endpoint.admin_url(f"apps/{settings.shopify_api_key}")},
    )
    response.delete_cookie(oauth_state.COOKIE_NAME, path="/auth")
    return response


_session_bearer = HTTPBearer(auto_error=False, description="The App Bridge session token (JWT)")
# App Bridge answers a 401 carrying this header by fetching a fresh session token and retrying.
RETRY_HEADER = "X-Shopify-Retry-Invalid-Session-Request"


def _invalid_session(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        message,
        headers={"WWW-Authenticate": "Bearer", RETRY_HEADER: "1"},
    )


@router.post(
    "/token-exchange",
    responses={
        200: {"description": "installed (or already installed: nothing was asked of Shopify)"},
        400: {"description": "the session token's shop is not a *.myshopify.com domain"},
        401: {"description": "the session token is missing, invalid or refused by Shopify"},
        502: {"description": "Shopify refused the token exchange"},
    },
)
async def token_exchange(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_session_bearer)],
) -> JSONResponse:
    """Install for an embedded app: verify its session token, trade it with Shopify for an
    expiring offline token (token-exchange grant), and store that as the OAuth callback does.
    Repeating it for an installed shop changes nothing."""
    if credentials is None or not credentials.credentials:
        raise _invalid_session("Authorization: Bearer <session token> is required")
    settings = rt.settings
    try:
        claims = verify_session_token(
            credentials.credentials,
            client_id=settings.shopify_api_key,
            secrets=app_secrets(settings),
        )
    except InvalidSessionToken as exc:
        raise _invalid_session(str(exc)) from None
    domain = _storable_shop(claims.shop)
    async with global_scope(rt.pool) as conn:
        known = await repository.lookup_status(conn, domain)
    if known is not None and known.status == repository.INSTALLED:
        return _exchange_answer(domain, known.id, new_install=False, exchanged=False)
    try:
        grant = await rt.token_client.exchange_session_token(domain, credentials.credentials)
    except ShopifyError as exc:
        code = exc.code if isinstance(exc, OAuthError) else None
        if code == "invalid_subject_token":
            # Expired between our check and Shopify's, or signed with a secret Shopify retired.
            raise _invalid_session("Shopify refused the session token") from None
        log.warning("token exchange for %s failed (%s)", domain, code or type(exc).__name__)
        raise HTTPException(
            status.HTTP_502_BAD_GATEWAY, "Shopify refused the token exchange"
        ) from None
    async with global_scope(rt.pool) as conn:
        result = await service.complete_token_exchange(conn, rt.vault, domain, grant)
    await service.resume_shop_queues(rt, result.shop_id)
    fresh = result.full_sync_job_id is not None
    log.info(
        "shop %s (%s) %s by token exchange",
        result.shop_id,
        domain,
        "installed" if fresh else "re-authorized",
    )
    return _exchange_answer(domain, result.shop_id, new_install=fresh, exchanged=True)


def _exchange_answer(
    domain: str, shop_id: UUID, *, new_install: bool, exchanged: bool
) -> JSONResponse:
    return JSONResponse(
        {
            "shop": domain,
            "shop_id": str(shop_id),
            "status": "installed",
            "new_install": new_install,
            "token_exchanged": exchanged,
        }
    )
