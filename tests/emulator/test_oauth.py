"""Routing by Host and OAuth, checked against the protocol page with independently computed signatures."""

from __future__ import annotations

import time
from urllib.parse import parse_qsl, urlsplit

import jwt

from shopify_emulator import EmulatorConfig, ShopConfig
from shopify_emulator.__main__ import build_config, parser
from shopify_emulator.clock import ManualClock
from tests.emulator.clients import Connect, MakeEmulator, Shop
from tests.shopify_library import library_hmac, library_message

SECRET = "shpss_emulator_client_secret_0123456789"
CLIENT = "emulator-client-id"


def _authorize(shop: Shop, **extra: str) -> dict[str, str]:
    params = {
        "client_id": CLIENT,
        "scope": "read_products,read_inventory",
        "redirect_uri": "https://app.example/cb",
        "state": "nonce123",
        **extra,
    }
    response = shop.http.get("/admin/oauth/authorize", params=params)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == "https://app.example/cb"
    return dict(parse_qsl(location.query))


def test_unknown_host_is_404_and_known_host_routes(alpha: Shop) -> None:
    response = alpha.http.post(
        "/admin/api/2026-01/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"Host": "nobody.myshopify.com"},
    )
    assert response.status_code == 404
    assert (
        alpha.gql("{ shop { myshopifyDomain } }")["data"]["shop"]["myshopifyDomain"]
        == "alpha.myshopify.com"
    )


def test_callback_is_signed_as_the_official_library_checks_it(alpha: Shop) -> None:
    params = _authorize(alpha, state="nonce 123~*")
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert params["shop"] == "alpha.myshopify.com"
    assert params["state"] == "nonce 123~*"
    assert abs(int(params["timestamp"]) - time.time()) < 5
    assert "&state=nonce%20123%7E*&" in library_message(params)
    assert params["hmac"] == library_hmac(params, SECRET)


def test_code_exchange_with_expiring_tokens_and_refresh_rotation(alpha: Shop) -> None:
    code = _authorize(alpha)["code"]
    url = "/admin/oauth/access_token"
    body = alpha.http.post(
        url, json={"client_id": CLIENT, "client_secret": SECRET, "code": code, "expiring": "1"}
    ).json()
    assert body["scope"] == "read_products,read_inventory"
    assert body["expires_in"] == 3600
    assert body["refresh_token"]
    assert body["refresh_token_expires_in"] > 0
    # The code is single use.
    again = alpha.http.post(url, json={"client_id": CLIENT, "client_secret": SECRET, "code": code})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_request"
    scopes = alpha.http.get(
        "/admin/oauth/access_scopes.json", headers={"X-Shopify-Access-Token": body["access_token"]}
    )
    assert scopes.json() == {
        "access_scopes": [{"handle": "read_products"}, {"handle": "read_inventory"}]
    }
    r1 = body["refresh_token"]
    refresh = {"client_id": CLIENT, "client_secret": SECRET, "grant_type": "refresh_token"}
    second = alpha.http.post(url, json={**refresh, "refresh_token": r1}).json()
    r2 = second["refresh_token"]
    assert r2 != r1
    assert second["access_token"] != body["access_token"]
    # R1 stays valid until R2 is first used.
    third = alpha.http.post(url, json={**refresh, "refresh_token": r1})
    assert third.status_code == 200
    assert alpha.http.post(url, json={**refresh, "refresh_token": r2}).status_code == 200
    dead = alpha.http.post(url, json={**refresh, "refresh_token": r1})
    assert dead.status_code == 400
    assert dead.json()["error"] == "invalid_grant"
    bad_client = alpha.http.post(
        url, json={"client_id": CLIENT, "client_secret": "wrong", "code": "x"}
    )
    assert bad_client.status_code == 401


def test_token_exchange_grants(alpha: Shop) -> None:
    url = "/admin/oauth/access_token"
    legacy = alpha.mint()
    offline = "urn:shopify:params:oauth:token-type:offline-access-token"
    migrated = alpha.http.post(
        url,
        json={
            "client_id": CLIENT,
            "client_secret": SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": legacy,
            "subject_token_type": offline,
            "requested_token_type": offline,
            "expiring": "1",
        },
    ).json()
    assert migrated["expires_in"] == 3600
    assert "refresh_token" in migrated
    old = alpha.http.post(
        "/admin/api/2026-01/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"X-Shopify-Access-Token": legacy},
    )
    assert old.status_code == 401
    now = int(time.time())
    claims = {
        "iss": "https://alpha.myshopify.com/admin",
        "dest": "https://alpha.myshopify.com",
        "aud": CLIENT,
        "sub": "42",
        "exp": now + 60,
        "nbf": now - 1,
        "iat": now,
        "jti": "j1",
        "sid": "s1",
    }
    session = jwt.encode(claims, SECRET, algorithm="HS256")
    exchanged = alpha.http.post(
        url,
        json={
            "client_id": CLIENT,
            "client_secret": SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": session,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
            "requested_token_type": "urn:shopify:params:oauth:token-type:online-access-token",
        },
    ).json()
    assert exchanged["associated_user"]["email"].endswith("alpha.myshopify.com")
    assert exchanged["expires_in"] == 3600
    forged = jwt.encode(claims, "shpss_not_the_secret_at_all_0000000000", algorithm="HS256")
    rejected = alpha.http.post(
        url,
        json={
            "client_id": CLIENT,
            "client_secret": SECRET,
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": forged,
            "subject_token_type": "urn:ietf:params:oauth:token-type:id_token",
        },
    )
    assert rejected.status_code == 400


def test_expired_and_revoked_tokens_get_shopify_401(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    clock = ManualClock()
    emulator = make_emulator(
        EmulatorConfig(
            shops=[ShopConfig(name="short", products=3)], access_token_ttl_s=3600, clock=clock
        )
    )
    shop = connect(emulator, "short")
    expiring = shop.mint(expiring=True)
    clock.advance(3599)
    assert shop.gql("{ shop { id } }", token=expiring)["data"]["shop"]["id"].startswith(
        "gid://shopify/Shop/"
    )
    clock.advance(1)
    expired = shop.http.post(
        "/admin/api/2026-01/graphql.json",
        json={"query": "{ shop { id } }"},
        headers={"X-Shopify-Access-Token": expiring},
    )
    assert expired.status_code == 401
    assert expired.json() == {
        "errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"
    }
    shop.control("POST", "/tokens/revoke", json={})
    revoked = shop.http.get(
        "/admin/api/2026-01/shop.json", headers={"X-Shopify-Access-Token": shop.token}
    )
    assert revoked.status_code == 401


def test_access_token_life_from_the_command_line(
    make_emulator: MakeEmulator, connect: Connect
) -> None:
    """The drills' soak shortens it so that its checks run on refreshed tokens."""
    config = build_config(
        parser().parse_args(
            [
                *("--shops", "ttl:2", "--client-id", CLIENT, "--client-secret", SECRET),
                *("--access-token-ttl", "420"),
            ]
        )
    )
    shop = connect(make_emulator(config), "ttl")
    code = _authorize(shop)["code"]
    body = shop.http.post(
        "/admin/oauth/access_token",
        json={"client_id": CLIENT, "client_secret": SECRET, "code": code, "expiring": "1"},
    ).json()
    assert body["expires_in"] == 420
    assert body["refresh_token_expires_in"] == int(EmulatorConfig().refresh_token_ttl_s)
