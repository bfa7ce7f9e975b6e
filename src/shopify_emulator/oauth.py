"""OAuth: authorize (auto-approved), the token endpoint with its four grants, access scopes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode

import jwt
import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from shopify_emulator.config import AppCredentials
from shopify_emulator.state import AccessToken, EmulatorState, ShopState

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
OFFLINE_TYPE = "urn:shopify:params:oauth:token-type:offline-access-token"
ONLINE_TYPE = "urn:shopify:params:oauth:token-type:online-access-token"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # noqa: S105
CODE_TTL_S = 600.0
SESSION_LEEWAY_S = 10
# Shopify's answer to an expired, forged or foreign session token.
INVALID_SUBJECT = "Token exchange cannot be performed due to an invalid subject token."
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"  # noqa: S105


# Printable ASCII in ICU root collation order: JavaScript's `localeCompare`, which orders the keys
# in the official library's check (case only breaks ties: a < A < b).
_COLLATION = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"


def _collation(key: str) -> tuple[list[int], list[bool]]:
    weights = [
        _COLLATION.find(c.lower()) if c.isascii() and c.lower() in _COLLATION else 256 + ord(c)
        for c in key
    ]
    return weights, [c.isupper() for c in key]


def _percent(text: str) -> str:
    # URLSearchParams' byte set (alphanumerics and * - . _ stay), a space as %20 not `+`.
    return "".join(
        chr(b) if chr(b).isascii() and (chr(b).isalnum() or chr(b) in "*-._") else f"%{b:02X}"
        for b in text.encode("utf-8", "replace")
    )


def callback_hmac(params: dict[str, str], secret: str) -> str:
    """Shopify's signature of a redirect to the app, made so that `@shopify/shopify-api` accepts it
    (lib/utils/hmac-validator.ts `stringifyQueryForAdmin`, lib/utils/processed-query.ts): every
    parameter but hmac/signature, keys in `localeCompare` order, `key=value` pairs encoded by
    URLSearchParams with `+` then turned into `%20`, joined by `&`; HMAC-SHA256, hex."""
    keys = sorted((k for k in params if k not in ("hmac", "signature")), key=_collation)
    message = "&".join(f"{_percent(k)}={_percent(params[k])}" for k in keys)
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def not_found() -> Response:
    return JSONResponse({"errors": "Not Found"}, status_code=404)


def oauth_error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status)


async def authorize(request: Request, state: EmulatorState, shop: ShopState) -> Response:
    query = request.query_params
    app = state.apps.get(query.get("client_id", ""))
    if app is None:
        return PlainTextResponse(
            "Oauth error invalid_request: The client_id is not valid", status_code=400
        )
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        return PlainTextResponse(
            "Oauth error invalid_request: The redirect_uri is missing", status_code=400
        )
    requested = tuple(s for s in query.get("scope", "").split(",") if s) or app.scopes
    online = "per-user" in query.getlist("grant_options[]")
    code = secrets.token_hex(16)
    shop.codes[code] = (app.client_id, state.clock.time() + CODE_TTL_S, requested, online)
    params = {
        "code": code,
        "host": base64.b64encode(f"admin.shopify.com/store/{shop.config.name}".encode())
        .decode()
        .rstrip("="),
        "shop": shop.domain,
        "state": query.get("state", ""),
        "timestamp": str(int(state.clock.time())),
    }
    params["hmac"] = callback_hmac(params, app.client_secret)
    separator = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{separator}{urlencode(params)}", status_code=302)


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            decoded = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            return {}
        return decoded if isinstance(decoded, dict) else {}
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _token_body(
    state: EmulatorState,
    shop: ShopState,
    app: AppCredentials,
    scopes: tuple[str, ...],
    expiring: bool,
    online: bool,
) -> dict[str, Any]:
    access, refresh = state.issue_token(shop, app, scopes, expiring=expiring, online=online)
    body: dict[str, Any] = {"access_token": access.value, "scope": ",".join(scopes)}
    if access.expires_at is not None:
        body["expires_in"] = int(state.config.access_token_ttl_s)
    if refresh is not None:
        body["refresh_token"] = refresh.value
        body["refresh_token_expires_in"] = int(state.config.refresh_token_ttl_s)
    if online:
        body["associated_user_scope"] = ",".join(scopes)
        body["associated_user"] = {
            "id": 902541635,
            "first_name": "Ana",
            "last_name": "Pop",
            "email": f"ana@{shop.domain}",
            "account_owner": True,
            "locale": "en",
            "collaborator": False,
            "email_verified": True,
        }
    return body


async def access_token(request: Request, state: EmulatorState, shop: ShopState) -> Response:
    body = await _body(request)
    app = state.apps.get(str(body.get("client_id", "")))
    if app is None or not hmac.compare_digest(
        str(body.get("client_secret", "")), app.client_secret
    ):
        return oauth_error(401, "invalid_client", "Client credentials are invalid")
    expiring = str(body.get("expiring", "0")) == "1"
    grant = body.get("grant_type")
    if grant == "refresh_token":
        return _refresh(state, shop, app, str(body.get("refresh_token", "")))
    if grant == TOKEN_EXCHANGE:
        return _exchange(state, shop, app, body, expiring)
    code = str(body.get("code", ""))
    entry = shop.codes.pop(code, None)
    if entry is None or entry[0] != app.client_id or entry[1] < state.clock.time():
        return oauth_error(
            400, "invalid_request", "The authorization code was not found or was already used"
        )
    _, _, scopes, online = entry
    return JSONResponse(_token_body(state, shop, app, scopes, expiring, online))


def _refresh(state: EmulatorState, shop: ShopState, app: AppCredentials, value: str) -> Response:
    refresh = shop.refresh_tokens.get(value)
    if refresh is None or refresh.revoked or refresh.app.client_id != app.client_id:
        return oauth_error(400, "invalid_grant", "The refresh token is invalid or has been revoked")
    if refresh.expires_at < state.clock.time():
        return oauth_error(400, "invalid_grant", "The refresh token has expired")
    # The previous refresh token stays valid until its successor is first used: that is now.
    if refresh.parent is not None and refresh.parent in shop.refresh_tokens:
        shop.refresh_tokens[refresh.parent].revoked = True
    scopes = shop.granted_scopes.get(app.client_id, refresh.scopes)
    body = _token_body(state, shop, app, scopes, True, False)
    shop.refresh_tokens[body["refresh_token"]].parent = value
    return JSONResponse(body)


def _exchange(
    state: EmulatorState, shop: ShopState, app: AppCredentials, body: dict[str, Any], expiring: bool
) -> Response:
    subject = str(body.get("subject_token", ""))
    subject_type = body.get("subject_token_type")
    requested = body.get("requested_token_type", OFFLINE_TYPE)
    if subject_type == OFFLINE_TYPE:
        old = shop.tokens.get(subject)
        if (
            old is None
            or not old.valid(state.clock.time())
            or old.app.client_id != app.client_id
            or old.expires_at is not None
        ):
            return oauth_error(400, "invalid_subject_token", "The subject token is invalid")
        # Migration to an expiring token retires the non-expiring one.
        old.revoked = True
        return JSONResponse(_token_body(state, shop, app, old.scopes, True, False))
    if subject_type == ID_TOKEN_TYPE:
        if requested not in (OFFLINE_TYPE, ONLINE_TYPE):
            return oauth_error(400, "invalid_request", "The requested_token_type is not supported")
        if not _session_token_valid(subject, app, shop):
            return oauth_error(400, "invalid_subject_token", INVALID_SUBJECT)
        scopes = shop.granted_scopes.get(app.client_id, app.scopes)
        online = requested == ONLINE_TYPE
        return JSONResponse(_token_body(state, shop, app, scopes, expiring and not online, online))
    return oauth_error(400, "unsupported_token_type", "The subject_token_type is not supported")


def _session_token_valid(token: str, app: AppCredentials, shop: ShopState) -> bool:
    """What Shopify checks of an App Bridge session token before exchanging it: HS256 under the
    app's secret, `aud` the app's client id, `exp`/`nbf` (10 s of clock skew), and `dest` and
    `iss` naming this shop. Any failure gives the same answer, as Shopify's does."""
    try:
        claims = jwt.decode(
            token,
            app.client_secret,
            algorithms=["HS256"],
            audience=app.client_id,
            leeway=SESSION_LEEWAY_S,
            options={"require": ["exp", "nbf", "aud", "dest", "iss"]},
        )
    except jwt.PyJWTError:
        return False
    dest, iss = claims.get("dest"), claims.get("iss")
    return dest == f"https://{shop.domain}" and iss == f"https://{shop.domain}/admin"


def authenticate(request: Request, shop: ShopState) -> AccessToken | Response:
    value = request.headers.get("x-shopify-access-token", "")
    token = shop.tokens.get(value)
    if token is None or not token.valid(shop.clock.time()):
        return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
    return token


async def access_scopes(request: Request, state: EmulatorState, shop: ShopState) -> Response:
    token = authenticate(request, shop)
    if isinstance(token, Response):
        return token
    return JSONResponse({"access_scopes": [{"handle": scope} for scope in token.scopes]})
