"""OAuth for a Shopify app (authorization code grant with expiring offline tokens).

Pure protocol helpers: shop-domain validation, the authorize URL, the callback HMAC, and the three
token calls on `/admin/oauth/access_token` (code exchange, refresh, token exchange). No database.
Tokens travel in `SecretStr` so a repr, a log line or a traceback never shows them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import msgspec
from pydantic import SecretStr

from neanelu.shopify.errors import InvalidToken, QueryError, ShopifyError, TransientError
from neanelu.shopify.graphql import ShopEndpoint
from neanelu.shopify.signed_query import QueryValue, signed_message

# The official libraries' rule (@shopify/shopify-api `sanitizeShop`), trailing slashes tolerated.
SHOP_DOMAIN_RE = re.compile(
    r"^[a-zA-Z0-9][a-zA-Z0-9-_]*\.(myshopify\.com|shopify\.com|myshopify\.io|shop\.dev)[/]*$"
)
# admin.shopify.com/store/{handle} is the unified admin's address for {handle}.myshopify.com.
_ADMIN_STORE_RE = re.compile(r"^admin\.shopify\.com/store/([a-zA-Z0-9][a-zA-Z0-9-_]*)/?$")
CALLBACK_MAX_SKEW_S = 90
# Protocol identifiers, not credentials.
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
OFFLINE_TOKEN_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"  # noqa: S105
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105


class InvalidShopDomain(ValueError):
    """The `shop` value is not a Shopify shop domain; nothing was requested from it."""


class OAuthError(ShopifyError):
    """The token endpoint refused the request (bad code, revoked refresh token, wrong secret).

    `code` is Shopify's `error` field (`invalid_subject_token`, `invalid_grant`, ...) when the
    answer carried one; never its description, which may echo what was sent."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message if code is None else f"{message} ({code})")
        self.code = code


_ERROR_CODE_RE = re.compile(r"^[a-z_]{1,64}$")


class _ErrorResponse(msgspec.Struct):
    error: str = ""


def _error_code(content: bytes) -> str | None:
    try:
        code = msgspec.json.decode(content, type=_ErrorResponse).error
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return code if _ERROR_CODE_RE.match(code) else None


def normalize_shop_domain(value: str | None) -> str:
    """The shop's canonical domain (lowercase, no trailing slash) or `InvalidShopDomain`.

    Checked before any outbound request: the code exchange is a server-side POST to this host, so
    a domain outside Shopify's would turn the app into a request forwarder.
    """
    if not value:
        raise InvalidShopDomain("shop is missing")
    text = value.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme) :]
    admin = _ADMIN_STORE_RE.match(text)
    if admin:
        text = f"{admin.group(1)}.myshopify.com"
    if len(text) > 255 or not SHOP_DOMAIN_RE.match(text):
        raise InvalidShopDomain("shop must be a Shopify domain such as example.myshopify.com")
    return text.rstrip("/").lower()


def authorize_url(
    endpoint: ShopEndpoint,
    *,
    client_id: str,
    scopes: Iterable[str],
    redirect_uri: str,
    state: str,
    online: bool = False,
) -> str:
    """Where the merchant's browser goes to approve the app (`grant_options[]`: §1 of
    docs/shopify-protocol.md)."""
    query = urlencode(
        {
            "client_id": client_id,
            "scope": ",".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "grant_options[]": "per-user" if online else "",
        }
    )
    return f"{endpoint.admin_url('oauth/authorize')}?{query}"


def callback_message(params: Mapping[str, QueryValue]) -> str:
    """The signed text, built as the official library builds it (see `signed_query`)."""
    return signed_message(params)


def sign_callback(params: Mapping[str, QueryValue], secret: str) -> str:
    return hmac.new(secret.encode(), callback_message(params).encode(), hashlib.sha256).hexdigest()


def verify_callback_hmac(params: Mapping[str, QueryValue], secrets: Iterable[str]) -> bool:
    """True when `hmac` is the lowercase hex HMAC of the other parameters under one secret."""
    given = params.get("hmac")
    if not given or not isinstance(given, str):
        return False
    given_bytes = given.lower().encode("ascii", "replace")
    message = callback_message(params).encode()
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
        matched |= hmac.compare_digest(expected, given_bytes)
    return matched


def timestamp_is_fresh(
    value: str | None, *, now: float | None = None, max_skew_s: int = CALLBACK_MAX_SKEW_S
) -> bool:
    """The callback's `timestamp` is within `max_skew_s` of now, in either direction."""
    if not value or not value.isdigit() or len(value) > 12:
        return False
    current = time.time() if now is None else now
    return abs(current - int(value)) <= max_skew_s


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint answered. Expiry times are absolute (epoch seconds)."""

    access_token: SecretStr = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: float | None
    refresh_token: SecretStr | None = field(default=None, repr=False)
    refresh_token_expires_at: float | None = None


class _TokenResponse(msgspec.Struct, kw_only=True):
    access_token: str
    scope: str = ""
    expires_in: float | None = None
    refresh_token: str | None = None
    refresh_token_expires_in: float | None = None


_token_decoder = msgspec.json.Decoder(_TokenResponse)


@dataclass(frozen=True, slots=True)
class TokenClient:
    """The app's side of `/admin/oauth/access_token` for any shop."""

    http: httpx.AsyncClient
    client_id: str
    client_secret: SecretStr = field(repr=False)
    api_version: str
    base_url: str | None = None

    def endpoint(self, shop: str) -> ShopEndpoint:
        return ShopEndpoint(shop, self.api_version, self.base_url)

    async def exchange_code(self, shop: str, code: str) -> TokenGrant:
        """Trade the callback's code for an expiring offline token."""
        return await self._request(shop, {"code": code, "expiring": "1"})

    async def refresh(self, shop: str, refresh_token: SecretStr) -> TokenGrant:
        """A new access token and a new refresh token; the old refresh token stays valid only
        until the new one is first used."""
        return await self._request(
            shop,
            {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()},
        )

    async def exchange_offline_token(self, shop: str, token: SecretStr) -> TokenGrant:
        """Migrate a non-expiring offline token to an expiring one."""
        return await self._request(
            shop,
            {
                "grant_type": TOKEN_EXCHANGE_GRANT,
                "subject_token": token.get_secret_value(),
                "subject_token_type": OFFLINE_TOKEN_TYPE,
                "requested_token_type": OFFLINE_TOKEN_TYPE,
                "expiring": "1",
            },
        )

    async def exchange_session_token(self, shop: str, session_token: str) -> TokenGrant:
        """An embedded app's install: the session JWT buys an expiring offline token."""
        return await self._request(
            shop,
            {
                "grant_type": TOKEN_EXCHANGE_GRANT,
                "subject_token": session_token,
                "subject_token_type": ID_TOKEN_TYPE,
                "requested_token_type": OFFLINE_TOKEN_TYPE,
                "expiring": "1",
            },
        )

    async def _request(self, shop: str, fields: dict[str, str]) -> TokenGrant:
        endpoint = self.endpoint(normalize_shop_domain(shop))
        body: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret.get_secret_value(),
            **fields,
        }
        try:
            response = await self.http.post(
                endpoint.admin_url("oauth/access_token"),
                content=msgspec.json.encode(body),
                headers={
                    **endpoint.headers,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            # The exception text may echo the request; only its kind is kept.
            raise TransientError(f"{endpoint.domain}: token request {type(exc).__name__}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(f"{endpoint.domain}: token endpoint HTTP {response.status_code}")
        if response.status_code == 401:
            raise InvalidToken(f"{endpoint.domain}: token endpoint refused the credentials")
        if response.status_code != 200:
            raise OAuthError(
                f"{endpoint.domain}: token endpoint HTTP {response.status_code}",
                _error_code(response.content),
            )
        try:
            data = _token_decoder.decode(response.content)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise QueryError(f"{endpoint.domain}: token response has an unexpected shape") from None
        now = time.time()
        return TokenGrant(
            access_token=SecretStr(data.access_token),
            scopes=tuple(s.strip() for s in data.scope.split(",") if s.strip()),
            expires_at=None if data.expires_in is None else now + data.expires_in,
            refresh_token=None if data.refresh_token is None else SecretStr(data.refresh_token),
            refresh_token_expires_at=(
                None
                if data.refresh_token_expires_in is None
                else now + data.refresh_token_expires_in
            ),
        )
