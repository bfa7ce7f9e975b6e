"""Session tokens from the embedded admin: HS256 JWTs signed with the app secret.

Claims: `iss` (https://{shop}/admin), `dest` (https://{shop}), `aud` (the app's client id), `sub`
(the staff user), `exp`, `nbf`, `iat`, `jti`, `sid`. Clocks drift, so `exp`/`nbf` get 10 s leeway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import jwt

from neanelu.shopify.oauth import InvalidShopDomain, normalize_shop_domain

LEEWAY_S = 10
_REQUIRED = ["exp", "nbf", "iat", "aud", "dest", "iss"]


class InvalidSessionToken(ValueError):
    """The token is malformed, expired, for another app, or its shop claims disagree."""


@dataclass(frozen=True, slots=True)
class SessionClaims:
    shop: str  # the shop's domain, from `dest`
    user_id: str | None
    session_id: str | None


def verify_session_token(
    token: str, *, client_id: str, secrets: Iterable[str], now: float | None = None
) -> SessionClaims:
    """The verified claims, or `InvalidSessionToken` saying what was wrong (never the token)."""
    if not token or token.count(".") != 2:
        raise InvalidSessionToken("session token is not a JWT")
    claims: dict[str, object] | None = None
    last_error = "session token signature does not match"
    for secret in secrets:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=client_id,
                leeway=LEEWAY_S,
                options={"require": _REQUIRED, "verify_iat": False},
            )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise InvalidSessionToken("session token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidSessionToken("session token is not valid yet (nbf)") from None
        except jwt.InvalidAudienceError:
            raise InvalidSessionToken("session token is for another app (aud)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidSessionToken(f"session token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError:
            last_error = "session token is malformed"
            break
    if claims is None:
        raise InvalidSessionToken(last_error)
    shop = _shop_of(claims.get("dest"), "dest")
    issuer_shop = _shop_of(claims.get("iss"), "iss")
    if issuer_shop != shop:
        raise InvalidSessionToken("session token iss and dest name different shops")
    sub, sid = claims.get("sub"), claims.get("sid")
    return SessionClaims(
        shop=shop,
        user_id=str(sub) if sub is not None else None,
        session_id=str(sid) if sid is not None else None,
    )


def _shop_of(value: object, claim: str) -> str:
    if not isinstance(value, str):
        raise InvalidSessionToken(f"session token {claim} is not a URL")
    host = urlsplit(value).netloc or value
    try:
        return normalize_shop_domain(host)
    except InvalidShopDomain:
        raise InvalidSessionToken(f"session token {claim} is not a Shopify shop") from None
