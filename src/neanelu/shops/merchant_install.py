"""The app's install driven as a merchant's browser drives it, against a running neanelu and the
Shopify emulator: `/auth/install`, Shopify's authorize page (the emulator approves at once), then
`/auth/callback` with the state cookie. One round trip shared by `neanelu demo` and the tests and
drills that need an installed shop; the server side lives in `shops/routes.py`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit
from uuid import UUID

import httpx

from neanelu.shops.oauth_state import COOKIE_NAME


class InstallFailed(Exception):
    """A step of the round trip did not answer as it should; the message names the step."""


@dataclass(frozen=True, slots=True)
class Installed:
    shop_id: UUID
    domain: str
    callback_url: str  # where Shopify's authorize page sent the browser back to


def _answer(step: str, response: httpx.Response, expected: int = 302) -> None:
    if response.status_code != expected:
        raise InstallFailed(f"{step} answered {response.status_code}: {response.text[:200]}")


async def install_as_merchant(
    browser: httpx.AsyncClient, *, app_url: str, shopify_url: str, domain: str
) -> Installed:
    """Install the app on `domain` through neanelu at `app_url` and the emulator at
    `shopify_url`. `browser` must not follow redirects (each hop is checked here); its cookies
    are cleared on the way, as the callback is a fresh request carrying only the state cookie."""
    start = await browser.get(f"{app_url}/auth/install", params={"shop": domain})
    _answer("/auth/install", start)
    cookie = start.cookies.get(COOKIE_NAME)
    if not cookie:
        raise InstallFailed(f"/auth/install set no {COOKIE_NAME} cookie")
    authorize = urlsplit(start.headers["location"])
    # The emulator serves every shop on one port and tells them apart by the Host header.
    approved = await browser.get(
        f"{shopify_url}{authorize.path}?{authorize.query}", headers={"Host": domain}
    )
    _answer("the authorize page", approved)
    callback = approved.headers["location"]
    if not callback.startswith(f"{app_url}/auth/callback?"):
        raise InstallFailed(f"the authorize page sent the browser to {callback[:200]}")
    browser.cookies.clear()
    done = await browser.get(callback, headers={"Cookie": f"{COOKIE_NAME}={cookie}"})
    _answer("/auth/callback", done)
    try:
        shop_id = UUID(str(done.json()["shop_id"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise InstallFailed(f"/auth/callback answered no shop id: {done.text[:200]}") from exc
    return Installed(shop_id, domain, callback)
