"""The emulator's injected clock: stamps and expiries follow it, so tests advance it instead of sleeping."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from shopify_emulator import EmulatorConfig, ShopConfig
from shopify_emulator.clock import ManualClock, SystemClock
from tests.emulator.clients import Connect, MakeEmulator, Shop

START = 1_900_000_000.0  # 2030-03-17T17:46:40Z
SECRET = "shpss_emulator_client_secret_0123456789"
CLIENT = "emulator-client-id"
STAGE = """mutation($input: [StagedUploadInput!]!) { stagedUploadsCreate(input: $input) {
  stagedTargets { url parameters { name value } } userErrors { field message } } }"""


def test_a_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(start=START)
    assert (clock.time(), clock.monotonic()) == (START, 0.0)
    clock.advance(90)
    assert (clock.time(), clock.monotonic()) == (START + 90, 90.0)
    with pytest.raises(ValueError, match="forward only"):
        clock.advance(-1)
    assert clock.time() == START + 90
    assert EmulatorConfig().clock.__class__ is SystemClock


@pytest.fixture
def timed(make_emulator: MakeEmulator, connect: Connect) -> tuple[ManualClock, Shop]:
    clock = ManualClock(start=START)
    emulator = make_emulator(
        EmulatorConfig(shops=[ShopConfig(name="timed", products=5)], clock=clock)
    )
    return clock, connect(emulator, "timed")


def _authorize(shop: Shop) -> dict[str, str]:
    response = shop.http.get(
        "/admin/oauth/authorize",
        params={"client_id": CLIENT, "redirect_uri": "https://app.example/cb", "state": "s"},
    )
    assert response.status_code == 302
    return dict(parse_qsl(urlsplit(response.headers["location"]).query))


def test_oauth_codes_expire_on_the_clock(timed: tuple[ManualClock, Shop]) -> None:
    clock, shop = timed
    kept, lapsed = _authorize(shop), _authorize(shop)
    assert kept["timestamp"] == lapsed["timestamp"] == str(int(START))
    clock.advance(599)
    url = "/admin/oauth/access_token"
    ok = shop.http.post(
        url, json={"client_id": CLIENT, "client_secret": SECRET, "code": kept["code"]}
    )
    assert ok.status_code == 200
    assert ok.json()["access_token"].startswith("shpat_")
    clock.advance(2)  # past the codes' ten minutes
    late = shop.http.post(
        url, json={"client_id": CLIENT, "client_secret": SECRET, "code": lapsed["code"]}
    )
    assert late.status_code == 400
    assert late.json()["error"] == "invalid_request"


def test_changed_products_are_stamped_by_the_clock(timed: tuple[ManualClock, Shop]) -> None:
    clock, shop = timed
    clock.advance(61)
    changed = shop.control("PATCH", "/products/8000000000002", json={"title": "Renamed"})
    assert changed["product"]["updatedAt"] == "2030-03-17T17:47:41Z"
    read = shop.gql('{ product(id: "gid://shopify/Product/8000000000002") { title updatedAt } }')
    assert read["data"]["product"] == {"title": "Renamed", "updatedAt": "2030-03-17T17:47:41Z"}


def test_staged_upload_targets_expire_on_the_clock(timed: tuple[ManualClock, Shop]) -> None:
    clock, shop = timed
    target = shop.gql(
        STAGE,
        {
            "input": [
                {
                    "resource": "BULK_MUTATION_VARIABLES",
                    "filename": "v.jsonl",
                    "mimeType": "text/jsonl",
                    "httpMethod": "POST",
                }
            ]
        },
    )["data"]["stagedUploadsCreate"]["stagedTargets"][0]
    params = {p["name"]: p["value"] for p in target["parameters"]}
    clock.advance(3601)  # the targets live an hour
    response = httpx.post(target["url"], data=params, files={"file": ("v.jsonl", b"{}\n")})
    assert response.status_code >= 400
    assert b"ExpiredToken" in response.content
