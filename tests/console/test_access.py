"""Access to the console: sign-in, sessions, CSRF, the login rate limit and the audit log, over
the real app (ASGI) with the real database and Redis."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

from neanelu.cli.main import app as cli
from neanelu.config import Mode, Settings
from neanelu.db.pool import global_scope
from neanelu.queue.settings import QUEUE_NAMES
from neanelu.runtime import Runtime
from neanelu.web.console import ratelimit, sessions
from tests.console.conftest import PASSWORD, USERNAME, SignedIn, create_operator, csrf_of, sign_in
from tests.databases import TestDatabase
from tests.factories import create_shop


async def audit_actions(rt: Runtime) -> list[tuple[str, str, str]]:
    async with global_scope(rt.pool) as conn:
        cur = await conn.execute("SELECT username, action, target FROM console_audit ORDER BY id")
        return [(r[0], r[1], r[2]) for r in await cur.fetchall()]


async def test_anonymous_pages_send_to_the_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/admin/queues")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/queues"
    # A cookie that was not signed by this deployment opens nothing.
    client.cookies.set(sessions.COOKIE, "AAAA.BBBB", path="/admin")
    assert (await client.get("/admin/shops")).status_code == 303


async def test_sign_in_sets_a_signed_http_only_strict_cookie_and_is_audited(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await create_operator(runtime)
    response = await sign_in(client, next_path="/admin/queues")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/queues"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(sessions.COOKIE + "=")
    )
    flags = cookie.lower()
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/admin" in flags
    assert "secure" not in flags  # local mode runs on plain http
    page = await client.get("/admin/shops")
    assert page.status_code == 200
    assert USERNAME in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert (USERNAME, "login", "") in await audit_actions(runtime)
    # The database keeps a hash of the session token, never the token itself.
    token = sessions.unsign(
        sessions.signing_key(runtime.settings), cookie.split(";")[0].split("=", 1)[1]
    )
    assert token is not None
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT token_hash FROM console_sessions")
        assert [bytes(r[0]) for r in await cur.fetchall()] == [sessions.token_hash(token)]


async def test_an_offsite_next_is_ignored(runtime: Runtime, client: httpx.AsyncClient) -> None:
    await create_operator(runtime)
    response = await sign_in(client, next_path="//evil.example/admin")
    assert response.headers["location"] == "/admin/shops"


def test_cookies_are_secure_outside_local_mode() -> None:
    assert sessions.secure_cookies(Settings.model_construct(mode=Mode.PRODUCTION))
    assert not sessions.secure_cookies(Settings.model_construct(mode=Mode.LOCAL))


def test_a_tampered_cookie_is_refused() -> None:
    key = b"k" * 32
    token = b"t" * 32
    signed = sessions.sign(key, token)
    assert sessions.unsign(key, signed) == token
    body, mac = signed.split(".")
    assert sessions.unsign(key, body[:-2] + "AA." + mac) is None
    assert sessions.unsign(b"x" * 32, signed) is None
    assert sessions.unsign(key, "garbage") is None


async def test_wrong_password_is_refused_then_rate_limited(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await create_operator(runtime)
    for _ in range(ratelimit.MAX_PER_USER):
        response = await sign_in(client, password="not the password at all")
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert sessions.COOKIE not in response.cookies
    # Over the cap even the right password is refused, and the page says for how long.
    response = await sign_in(client)
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= ratelimit.WINDOW_S
    assert "Too many failed sign-ins" in response.text
    assert (await client.get("/admin/shops")).status_code == 303
    actions = [a for _, a, _ in await audit_actions(runtime)]
    assert actions.count("login.failed") == ratelimit.MAX_PER_USER
    assert actions[-1] == "login.rate_limited"


async def test_an_unknown_user_is_refused_like_a_wrong_password(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await create_operator(runtime)
    response = await sign_in(client, username="nobody")
    assert response.status_code == 401
    assert "Wrong username or password" in response.text


async def test_login_without_its_form_token_is_refused(
    runtime: Runtime, client: httpx.AsyncClient
) -> None:
    await create_operator(runtime)
    response = await client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF" in response.text


async def test_state_changes_need_the_sessions_csrf_token(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    shop_id = await create_shop(runtime.pool)
    c = signed_in.client
    for data in ({}, {"csrf_token": "forged"}):
        refused = await c.post(f"/admin/shops/{shop_id}/pause", data=data)
        assert refused.status_code == 403
        assert "CSRF token missing or wrong" in refused.text
    for name in QUEUE_NAMES:
        assert not (await runtime.queues.queue(name).group_state(str(shop_id)))["paused"]
    # The token travels in the form or in the X-CSRF-Token header.
    paused = await c.post(f"/admin/shops/{shop_id}/pause", data={"csrf_token": signed_in.csrf})
    assert paused.status_code == 303
    for name in QUEUE_NAMES:
        assert (await runtime.queues.queue(name).group_state(str(shop_id)))["paused"]
    resumed = await c.post(
        f"/admin/shops/{shop_id}/resume",
        headers={
            "X-CSRF-Token": signed_in.csrf,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert resumed.status_code == 303
    assert not (await runtime.queues.queue("bulk").group_state(str(shop_id)))["paused"]
    actions = [a for _, a, _ in await audit_actions(runtime)]
    assert actions[-2:] == ["shop.pause", "shop.resume"]


async def test_logout_ends_the_session(runtime: Runtime, signed_in: SignedIn) -> None:
    c = signed_in.client
    response = await c.post("/admin/logout", data={"csrf_token": signed_in.csrf})
    assert response.status_code == 303
    async with global_scope(runtime.pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM console_sessions")
        assert (await cur.fetchone()) == (0,)
    assert (await c.get("/admin/shops")).status_code == 303


async def test_the_read_functions_refuse_without_an_operator_session(
    runtime: Runtime, database: TestDatabase
) -> None:
    shop_id = await create_shop(runtime.pool)
    with psycopg.connect(database.app_url) as conn:
        for query, params in (
            ("SELECT * FROM console_shops()", ()),
            ("SELECT * FROM console_products(%s, NULL, 10, NULL, NULL, NULL)", (shop_id,)),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="no live operator"):
                conn.execute(query, params)
            conn.rollback()
        # A made-up session is no session.
        conn.execute("SELECT set_config('app.console_session', %s, true)", ("ab" * 32,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM console_shops()")


async def test_each_read_sees_one_shop_under_rls_and_no_tokens(
    runtime: Runtime, signed_in: SignedIn, database: TestDatabase
) -> None:
    a, b = await create_shop(runtime.pool), await create_shop(runtime.pool)
    with psycopg.connect(database.owner_url, autocommit=True) as conn:
        for shop, title in ((a, "Alpha"), (b, "Beta")):
            conn.execute("SELECT set_config('app.current_shop_id', %s, false)", (str(shop),))
            conn.execute(
                "INSERT INTO products (shop_id, shopify_id, title) VALUES (%s, 1, %s)",
                (shop, title),
            )
        conn.execute("UPDATE shops SET access_token_ct = '\\xdeadbeef', access_token_key_id = 'k1'")
    page = await signed_in.client.get(f"/admin/shops/{a}/products")
    assert page.status_code == 200
    assert "Alpha" in page.text
    assert "Beta" not in page.text
    shops_page = await signed_in.client.get("/admin/shops")
    assert "deadbeef" not in shops_page.text
    assert "\\xde" not in shops_page.text
    # Whatever the caller's tenant was, a console read leaves it as it found it.
    with psycopg.connect(database.app_url) as conn:
        conn.execute("SELECT set_config('app.current_shop_id', %s, true)", (str(b),))
        async with global_scope(runtime.pool) as side:
            cur = await side.execute("SELECT token_hash FROM console_sessions")
            found = await cur.fetchone()
            assert found is not None
            digest = bytes(found[0])
        conn.execute("SELECT set_config('app.console_session', %s, true)", (digest.hex(),))
        conn.execute("SELECT * FROM console_products(%s, NULL, 10, NULL, NULL, NULL)", (a,))
        row = conn.execute("SELECT current_setting('app.current_shop_id')").fetchone()
        assert row == (str(b),)


async def test_the_audit_log_is_append_only_for_the_service(
    runtime: Runtime, signed_in: SignedIn
) -> None:
    async with global_scope(runtime.pool) as conn:
        for statement in ("UPDATE console_audit SET action = 'x'", "DELETE FROM console_audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with conn.transaction():
                    await conn.execute(statement)
    page = await signed_in.client.get("/admin/audit")
    assert page.status_code == 200
    assert "login" in page.text


def test_create_user_takes_the_password_from_env_or_stdin_never_argv(
    database: TestDatabase, redis_url: str
) -> None:
    env = {"POSTGRES_URL": database.app_url, "REDIS_URL": redis_url}
    name = f"op-{uuid.uuid4().hex[:6]}"
    ok = CliRunner().invoke(
        cli, ["admin", "create-user", "-u", name], env={**env, "NEANELU_ADMIN_PASSWORD": PASSWORD}
    )
    assert ok.exit_code == 0, ok.output
    assert PASSWORD not in ok.output
    piped = CliRunner().invoke(
        cli, ["admin", "create-user", "-u", name + "b"], env=env, input=PASSWORD + "\n"
    )
    assert piped.exit_code == 0, piped.output
    short = CliRunner().invoke(
        cli, ["admin", "create-user", "-u", name + "c"], env=env, input="short\n"
    )
    assert short.exit_code == 2
    assert "at least 12 characters" in short.output
    again = CliRunner().invoke(
        cli, ["admin", "create-user", "-u", name], env=env, input=PASSWORD + "\n"
    )
    assert again.exit_code == 1
    assert "exists" in again.output
    argv = CliRunner().invoke(
        cli, ["admin", "create-user", "-u", name + "d", "--password", "x" * 20], env=env
    )
    assert argv.exit_code == 2  # there is no such option
    with psycopg.connect(database.owner_url) as conn:
        rows = conn.execute(
            "SELECT username, password_hash FROM console_operators ORDER BY username"
        ).fetchall()
    assert [r[0] for r in rows] == [name, name + "b"]
    assert all(r[1].startswith("$argon2id$") for r in rows)
    assert csrf_of('name="csrf_token" value="x"') == "x"
