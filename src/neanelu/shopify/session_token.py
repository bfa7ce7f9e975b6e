"""Session tokens from the embedded admin: HS256 JWTs signed with the app secret.

Claims: `iss` (https://{shop}/admin), `dest` (https://{shop}), `aud` (the app's client id), `sub`
(the staff user), `exp`, `nbf`, `iat`, `jti`, `sid`. Clocks drift, so `exp`/`nbf`/`iat` get 10 s
leeway. Shopify's tokens live one minute and name one audience, as the official library expects:
a token issued in the future, for several audiences, or for far longer was not made by Shopify.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
from jwt.warnings import InsecureKeyLengthWarning

from neanelu.shopify.oauth import InvalidShopDomain, normalize_shop_domain

LEEWAY_S = 10
# Shopify issues them with exp = iat + 60; a little more covers rounding, not hour-long tokens.
MAX_LIFETIME_S = 60 + LEEWAY_S
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
    claims: dict[str, Any] | None = None
    last_error = "session token signature does not match"
    for secret in secrets:
        if not secret:
            continue  # an empty key is no key: a token signed with it proves nothing
        try:
            with warnings.catch_warnings():
                # Local development secrets are short; production settings refuse them.
                warnings.simplefilter("ignore", InsecureKeyLengthWarning)
                claims = jwt.decode(
                    token,
                    secret,
                    algorithms=["HS256"],
                    audience=client_id,
                    leeway=LEEWAY_S,
                    options={"require": _REQUIRED, "verify_iat": True, "strict_aud": True},
                )
            break
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise InvalidSessionToken("session token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidSessionToken("session token is not valid yet (nbf or iat)") from None
        except jwt.InvalidAudienceError:
            raise InvalidSessionToken("session token is for another app (aud)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidSessionToken(f"session token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError:
            # Malformed tokens, and keys the library refuses to use: a 401, never an error.
            last_error = "session token is malformed"
            break
    if claims is None:
        raise InvalidSessionToken(last_error)
    _check_lifetime(claims)
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


def _check_lifetime(claims: dict[str, Any]) -> None:
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or not isinstance(iat, int | float):
        raise InvalidSessionToken("session token exp and iat must be numbers")
    if exp - iat > MAX_LIFETIME_S:
        raise InvalidSessionToken(
            f"session token lives longer than Shopify's ({MAX_LIFETIME_S} s at most)"
        )


def _shop_of(value: object, claim: str) -> str:
    if not isinstance(value, str):
        raise InvalidSessionToken(f"session token {claim} is not a URL")
    host = urlsplit(value).netloc or value
    try:
        return normalize_shop_domain(host)
    except InvalidShopDomain:
        raise InvalidSessionToken(f"session token {claim} is not a Shopify shop") from None
