"""The console in a real browser: Debian's Chromium driven by Playwright, against `neanelu serve`,
`neanelu worker` and the Shopify emulator as processes. Every page visited is screenshotted to
tests/console/screenshots/ and checked with axe-core (no serious or critical violations), in the
light and the dark colour scheme, at 1280 px."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import redis

from neanelu.queue.client import JobSpec, QueueClient
from tests.console.stack import DOMAIN, Stack, running_stack, wait_for
from tests.databases import DATA_DIR, TestDatabase, create_database, drop_database

T = TypeVar("T")
CHROMIUM = Path("/usr/bin/chromium")
HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
AXE = HERE / "axe.min.js"
USERNAME = "browser-ops"
PASSWORD = "a long browser test passphrase"
# As the machine notes say: no first-run work, no background connections to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is not installed (apt-get install -y chromium): "
        "the console's browser tests need /usr/bin/chromium",
    ),
    pytest.mark.skipif(
        not AXE.exists(), reason="axe-core is not vendored yet: run `make console-assets`"
    ),
    pytest.mark.timeout(600),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def stack(
    pg_server: Any, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    database: TestDatabase = create_database(pg_server, pg_template)
    from neanelu.db.embedded import start_redis

    # A Redis of its own: these processes use the default queue prefix.
    own_redis = start_redis(DATA_DIR / "console-browser", persist=False)
    redis.Redis.from_url(own_redis.url).flushall()
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        with running_stack(database, own_redis.url, tmp_path_factory.mktemp("stack")) as running:
            running.create_operator(USERNAME, PASSWORD)
            yield running
    finally:
        drop_database(database)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        profile = tmp_path_factory.mktemp("chromium-profile")
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800},
            # axe is injected as an inline script, which the console's CSP rightly refuses.
            bypass_csp=True,
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def check(page: Any, name: str) -> None:
    """Screenshot, no horizontal scrolling at 1280 px, and axe-core's verdict on the page."""
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, f"{name}: the page is {width} px wide at a 1280-px viewport"
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.slice(0, 3).map(n => n.html)}))"""
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"{name}: accessibility violations {bad}"


def sign_in(page: Any, stack: Stack, username: str = USERNAME, password: str = PASSWORD) -> None:
    page.goto(f"{stack.api_url}/admin/login")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")


@pytest.fixture
def page(browser: Any, stack: Stack) -> Iterator[Any]:
    browser.clear_cookies()
    tab = browser.new_page()
    tab.on("dialog", lambda dialog: dialog.accept())
    try:
        yield tab
    finally:
        tab.close()


def test_sign_in_and_every_page_light_and_dark(page: Any, stack: Stack) -> None:
    page.goto(f"{stack.api_url}/admin/shops")
    assert "/admin/login" in page.url  # sent to sign in first
    check(page, "login")
    sign_in(page, stack)
    page.wait_for_url("**/admin/shops")
    assert page.locator("#shops").get_by_text(DOMAIN).is_visible()
    shop_id = stack.shop_id
    run_id = stack.runs()[0][0]
    product = stack.sql("SELECT shopify_id FROM products ORDER BY shopify_id LIMIT 1")[0][0]
    pages = {
        "shops": "/admin/shops",
        "shop": f"/admin/shops/{shop_id}",
        "run": f"/admin/shops/{shop_id}/runs/{run_id}",
        "catalog": f"/admin/shops/{shop_id}/products",
        "product": f"/admin/shops/{shop_id}/products/{product}",
        "queues": "/admin/queues",
        "audit": "/admin/audit",
    }
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for name, path in pages.items():
            page.goto(f"{stack.api_url}{path}")
            assert page.locator("h1").is_visible()
            check(page, f"{name}-{scheme}")
    dark_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert dark_bg == "rgb(13, 17, 23)"  # the dark palette, not the light one
    page.click("text=Sign out")
    page.wait_for_url("**/admin/login")
    page.goto(f"{stack.api_url}/admin/queues")
    assert "/admin/login" in page.url


def test_wrong_password_is_refused_then_rate_limited(page: Any, stack: Stack) -> None:
    name = f"locked-{uuid.uuid4().hex[:6]}"
    stack.create_operator(name, PASSWORD)
    for _ in range(5):
        sign_in(page, stack, name, "not the right password")
        assert page.get_by_role("alert").inner_text() == "Wrong username or password."
    check(page, "login-refused")
    sign_in(page, stack, name, PASSWORD)  # the right one, too late
    assert "Too many failed sign-ins" in page.get_by_role("alert").inner_text()
    assert "/admin/login" in page.url
    check(page, "login-rate-limited")


def test_a_full_sync_is_followed_live_on_the_shop_page(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    shop_id = stack.shop_id
    before = len(stack.runs())
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    # Each file download cut every 8 KiB (resumed with Range, 0.1 s apart) while the progress is
    # looked for: on an idle machine a 1,500-product sync went from its first staged line to
    # completed between two of the page's one-second polls, and the test never saw the progress
    # it is here to check.
    stack.control(
        "POST", "/faults", json={"kind": "reset_download", "params": {"after_bytes": 8192}}
    )
    try:
        page.click("text=Start full sync")
        page.wait_for_url(f"**/admin/shops/{shop_id}?notice=sync*")
        assert page.get_by_role("status").inner_text() == "Full sync queued."
        page.evaluate("window.__same_page = true")
        # The live section shows the run while it runs, then its completion, with no reload.
        page.wait_for_selector("#active-run", timeout=60_000)
        # Progress shows once the bulk file stages: on a loaded machine the emulator's export
        # alone took over a minute (load average 30).
        page.wait_for_selector("#phase-progress", timeout=180_000)
    finally:
        stack.control("DELETE", "/faults")
    check(page, "sync-running")
    page.wait_for_selector("#active-run", state="detached", timeout=240_000)
    assert page.evaluate("window.__same_page") is True
    first_row = page.locator("#runs tbody tr").first
    assert first_row.locator(".run-status").inner_text() == "completed"
    runs = stack.runs()
    assert len(runs) == before + 1
    assert runs[-1][1] == "completed"
    check(page, "sync-completed")


def run_async(work: Coroutine[Any, Any, T]) -> T:
    """Playwright's sync API keeps an event loop on this thread; queue calls get their own."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def _bulk_queue(stack: Stack) -> Any:
    from redis.asyncio import Redis

    from neanelu.config import load_settings
    from neanelu.queue.settings import default_queues

    return QueueClient(Redis.from_url(stack.redis_url), default_queues(load_settings()))


def test_a_dead_job_is_retried_from_the_console(page: Any, stack: Stack) -> None:
    from neanelu.handles import FullSyncJob

    shop_id = stack.shop_id
    job_id = f"console-dead-{uuid.uuid4().hex[:8]}"
    stack.control("POST", "/faults", json={"kind": "http_5xx", "params": {"status": 503}})

    async def enqueue() -> None:
        client = _bulk_queue(stack)
        payload = msgspec.json.encode(FullSyncJob(shop_id=shop_id, reason="browser test"))
        await client.queue("bulk").enqueue(
            JobSpec(task="sync.full", group=shop_id, payload=payload, job_id=job_id, max_attempts=1)
        )
        await client.redis.aclose()

    async def state() -> str:
        client = _bulk_queue(stack)
        info = await client.queue("bulk").job_info(job_id)
        await client.redis.aclose()
        return info.state if info else "gone"

    run_async(enqueue())
    wait_for(lambda: run_async(state()) == "dead", "the job to die", timeout=120)
    stack.control("DELETE", "/faults")
    sign_in(page, stack)
    page.goto(f"{stack.api_url}/admin/queues")
    assert page.get_by_role("link", name=job_id).count() >= 1
    check(page, "queues-with-dead")
    page.goto(f"{stack.api_url}/admin/queues/bulk/dead")
    check(page, "dead-jobs")
    page.get_by_role("link", name=job_id).click()
    assert "HTTP 503" in page.locator("#job-error").inner_text()
    check(page, "dead-job")
    page.click("#retry-job")
    assert page.get_by_role("status").inner_text() == "1 job(s) retried."
    wait_for(
        lambda: run_async(state()) in ("completed", "gone"),
        "the retried job to finish",
        timeout=240,
    )
    assert stack.runs()[-1][1] == "completed"
    actions = stack.sql("SELECT action, target FROM console_audit WHERE action = 'queue.retry'")
    assert actions == [("queue.retry", "bulk/dead")]


def test_pause_and_resume_a_shop(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    shop_id = stack.shop_id
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    page.click("text=Pause queues")
    assert "Paused" in page.get_by_role("status").inner_text()
    assert "paused" in page.locator("#queue-state").inner_text()
    check(page, "shop-paused")
    r = redis.Redis.from_url(stack.redis_url)
    assert all(
        r.sismember(f"neanelu:{{{q}}}:paused", shop_id)
        for q in ("sync", "webhook", "bulk", "ai-batch")
    )
    page.goto(f"{stack.api_url}/admin/shops")
    assert page.locator("#shops tbody tr").first.get_by_text("paused").is_visible()
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    page.click("text=Resume queues")
    assert page.get_by_role("status").inner_text() == "Resumed."
    assert not r.sismember("neanelu:{bulk}:paused", shop_id)
    check(page, "shop-resumed")


def test_a_parity_check_runs_from_the_shop_page(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    shop_id = stack.shop_id
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    page.fill("#parity-sample", "20")
    page.click("text=Run parity check")
    assert "Parity check queued" in page.get_by_role("status").inner_text()

    def finished() -> bool:
        return stack.sql("SELECT status FROM parity_checks")[0][0] not in ("queued", "running")

    wait_for(finished, "the parity check", timeout=120)
    page.reload()
    row = page.locator("#parity tbody tr").first
    assert row.locator(".badge").inner_text() == "matches"
    assert "20 / 20" in row.inner_text()
    check(page, "shop-parity")


def test_browse_the_catalog(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    shop_id = stack.shop_id
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    page.click("text=Browse catalog")
    rows = page.locator("#products tbody tr")
    assert rows.count() == 50
    first_id = rows.first.locator("td").first.inner_text()
    page.click("#next-page")
    assert page.locator("#products tbody tr").first.locator("td").first.inner_text() != first_id
    check(page, "catalog-page-2")
    vendor = stack.sql("SELECT vendor FROM products WHERE vendor IS NOT NULL LIMIT 1")[0][0]
    page.fill("#f-vendor", str(vendor))
    page.click("text=Filter")
    vendors = page.locator("#products tbody tr td:nth-child(3)").all_inner_texts()
    assert vendors
    assert set(vendors) == {vendor}
    check(page, "catalog-filtered")
    page.locator("#products tbody tr").first.locator("a").click()
    assert page.locator("#variants tbody tr").count() >= 1
    check(page, "catalog-product")


def test_search_the_catalog_by_meaning(page: Any, stack: Stack) -> None:
    # The first full sync queued an embedding run for the whole shop; the worker commits it a
    # page at a time, so the first embedded products are searchable long before the last.
    wait_for(
        lambda: int(str(stack.sql("SELECT count(*) FROM embeddings")[0][0])) > 0,
        "the first products' embeddings",
        timeout=240,
    )
    shopify_id, title = stack.sql(
        "SELECT p.shopify_id, p.title FROM embeddings e JOIN products p"
        " ON p.shop_id = e.shop_id AND p.shopify_id = e.product_shopify_id"
        " ORDER BY p.shopify_id LIMIT 1"
    )[0]
    sign_in(page, stack)
    page.goto(f"{stack.api_url}/admin/shops/{stack.shop_id}/products")
    page.fill("#f-q", str(title))
    # The first search of a serve process loads the embedding model (seconds, more on a busy
    # machine): the navigation may take longer than Playwright's default 30 s.
    page.set_default_timeout(180_000)
    page.click("form[role=search] button")
    assert "model" in page.locator("#search-info").inner_text()
    row = page.locator("#search-hits tbody tr", has=page.locator(f"text={shopify_id}")).first
    why = row.locator("td").last.inner_text()
    # Its own title: found by its words and by its meaning.
    assert "words #" in why
    assert "meaning #" in why
    check(page, "catalog-search")
    row.locator("a").first.click()
    assert page.locator("#variants tbody tr").count() >= 1
    page.goto(f"{stack.api_url}/admin/shops/{stack.shop_id}/products?q=%20%20")
    assert "more than spaces" in page.locator("#search-error").inner_text()


def test_a_post_without_the_csrf_token_is_refused(page: Any, stack: Stack) -> None:
    sign_in(page, stack)
    shop_id = stack.shop_id
    audited = stack.sql("SELECT count(*) FROM console_audit")
    runs = len(stack.runs())
    page.goto(f"{stack.api_url}/admin/shops/{shop_id}")
    # The signed-in browser itself, with its session cookie, but no token.
    status = page.evaluate(
        """async (url) => (await fetch(url, {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: ''})).status""",
        f"/admin/shops/{shop_id}/pause",
    )
    assert status == 403
    response = page.request.post(
        f"{stack.api_url}/admin/shops/{shop_id}/sync", form={"csrf_token": "guess"}
    )
    assert response.status == 403
    assert "CSRF" in response.text()
    # Nothing happened and nothing was recorded as done.
    assert not redis.Redis.from_url(stack.redis_url).sismember("neanelu:{bulk}:paused", shop_id)
    assert stack.sql("SELECT count(*) FROM console_audit") == audited
    assert stack.sql("SELECT count(*) FROM outbox") == [(0,)] or len(stack.runs()) == runs
