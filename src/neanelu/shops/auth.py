"""Who is calling the read API: a Shopify session token (embedded admin) or a shop's API key.

Both arrive as `Authorization: Bearer ...`; API keys carry the `nk_` prefix, session tokens are
JWTs. Either way the result is one installed shop, and every query runs in its tenant scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, HTTPException, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from neanelu.db.pool import global_scope
from neanelu.runtime import app_secrets
from neanelu.shopify.session_token import InvalidSessionToken, verify_session_token
from neanelu.shops import repository
from neanelu.shops.service import API_KEY_PREFIX, hash_api_key
from neanelu.web.deps import RuntimeDep

_bearer = HTTPBearer(
    auto_error=False,
    description="A Shopify session token (HS256 JWT) or a per-shop API key (nk_...)",
)


@dataclass(frozen=True, slots=True)
class ShopPrincipal:
    shop_id: UUID
    domain: str
    via: str  # "session_token" or "api_key"


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_shop(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> ShopPrincipal:
    if credentials is None or not credentials.credentials:
        raise _unauthorized("Authorization: Bearer <session token or API key> is required")
    token = credentials.credentials
    if token.startswith(API_KEY_PREFIX):
        async with global_scope(rt.pool) as conn:
            found = await repository.find_by_api_key_hash(conn, hash_api_key(token))
        if found is None:
            raise _unauthorized("API key is not valid")
        shop_id, domain, shop_status = found.id, found.domain, found.status
        via = "api_key"
    else:
        try:
            claims = verify_session_token(
                token,
                client_id=rt.settings.shopify_api_key,
                secrets=app_secrets(rt.settings),
            )
        except InvalidSessionToken as exc:
            raise _unauthorized(str(exc)) from None
        async with global_scope(rt.pool) as conn:
            looked_up = await repository.lookup_status(conn, claims.shop)
        if looked_up is None:
            raise _unauthorized("the session token's shop has not installed the app")
        shop_id, shop_status = looked_up.id, looked_up.status
        domain, via = claims.shop, "session_token"
    if shop_status == repository.UNINSTALLED:
        raise _unauthorized("the shop has uninstalled the app")
    return ShopPrincipal(shop_id, domain, via)


CurrentShop = Annotated[ShopPrincipal, Depends(current_shop)]
