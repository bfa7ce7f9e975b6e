"""The OAuth `state`: a random nonce kept in a signed, short-lived cookie and used once.

The cookie proves the callback comes back to the browser that started the install (CSRF), for the
shop that install was started for (its signature covers the shop: a state issued for one shop does
not complete an install of another); the one-time mark in Redis makes a replayed callback (same URL, same cookie) fail before any request
to Shopify is made.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from redis.asyncio import Redis

COOKIE_NAME = "neanelu_oauth_state"
STATE_TTL_S = 60
_USED_TTL_S = 600


class StateError(ValueError):
    """The state is missing, forged, expired, for another install, or already used."""


def new_state() -> str:
    return secrets.token_hex(32)


def _sign(secret: str, state: str, shop: str, expires: int) -> str:
    message = f"oauth-state|{state}|{shop}|{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def cookie_value(secret: str, state: str, *, shop: str, now: float | None = None) -> str:
    expires = int(now if now is not None else time.time()) + STATE_TTL_S
    return f"{state}.{expires}.{_sign(secret, state, shop, expires)}"


def verify_cookie(
    cookie: str | None,
    state_param: str | None,
    secret: str,
    *,
    shop: str,
    now: float | None = None,
) -> str:
    """The state when the cookie is intact, unexpired, was issued for `shop` and equals the
    `state` parameter."""
    if not state_param:
        raise StateError("state parameter is missing")
    if not cookie:
        raise StateError("state cookie is missing (start the install again)")
    parts = cookie.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        raise StateError("state cookie is malformed")
    state, expires_text, signature = parts
    expires = int(expires_text)
    if not hmac.compare_digest(_sign(secret, state, shop, expires).encode(), signature.encode()):
        raise StateError("state cookie does not match (another shop's install, or forged)")
    if (now if now is not None else time.time()) > expires:
        raise StateError("state cookie has expired (start the install again)")
    if not hmac.compare_digest(state.encode(), state_param.encode("utf-8", "replace")):
        raise StateError("state parameter does not match the state cookie")
    return state


async def mark_used(redis: Redis, state: str, prefix: str = "neanelu") -> None:
    """Consume the state; a second use raises `StateError`."""
    digest = hashlib.sha256(state.encode()).hexdigest()
    if not await redis.set(f"{prefix}:oauth-state:{digest}", b"1", nx=True, ex=_USED_TTL_S):
        raise StateError("state was already used (replayed callback)")
