"""Sign in and out. The login form is protected by a double-submit token (a cookie and a hidden
field that must match), since there is no session yet to bind a CSRF token to."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from neanelu.db.pool import global_scope
from neanelu.web.console import audit, operators, ratelimit, sessions
from neanelu.web.console.deps import checked_form, client_address, first, form, runtime
from neanelu.web.console.passwords import verify
from neanelu.web.console.render import SECURITY_HEADERS, page

router = APIRouter()
HOME = "/admin/shops"


def safe_next(target: str) -> str:
    """Only back into the console: never to another host (`//evil`, `/\\evil`, `https:`)."""
    ok = target.startswith("/admin") and not target.startswith(("//", "/\\")) and "\\" not in target
    return target if ok else HOME


def _login_page(
    request: Request,
    *,
    error: str = "",
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        None,
        status_code=status_code,
        headers=headers,
        login_csrf=token,
        error=error,
        next=safe_next(request.query_params.get("next", HOME)),
    )
    response.set_cookie(
        sessions.LOGIN_CSRF_COOKIE,
        token,
        max_age=3600,
        path="/admin/login",
        httponly=True,
        secure=sessions.secure_cookies(runtime(request).settings),
        samesite="strict",
    )
    return response


@router.get("/admin/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    return _login_page(request)


@router.post("/admin/login", include_in_schema=False)
async def login(request: Request) -> Response:
    fields = await form(request)
    cookie = request.cookies.get(sessions.LOGIN_CSRF_COOKIE, "")
    if not cookie or not sessions.csrf_matches(cookie, first(fields, sessions.CSRF_FIELD)):
        raise HTTPException(403, "CSRF token missing or wrong")
    rt = runtime(request)
    username = first(fields, "username").strip().lower()[:64]
    password = first(fields, "password")
    address = client_address(request)
    prefix = rt.queues.prefix
    wait = await ratelimit.retry_after(rt.redis, prefix, username, address)
    if wait:
        async with global_scope(rt.pool) as conn:
            await audit.record(
                conn,
                operator_id=None,
                username=username,
                action="login.rate_limited",
                remote_addr=address,
            )
        return _login_page(
            request,
            error=f"Too many failed sign-ins. Try again in {wait} seconds.",
            status_code=429,
            headers={"Retry-After": str(wait)},
        )
    async with global_scope(rt.pool) as conn:
        found = await operators.credentials(conn, username)
        if not verify(found.password_hash if found else None, password) or found is None:
            await audit.record(
                conn,
                operator_id=None,
                username=username,
                action="login.failed",
                remote_addr=address,
            )
            failed = True
        else:
            operator_id, stored = found.id, found.password_hash
            await operators.logged_in(conn, operator_id, password, stored)
            token, _ = await sessions.open_session(conn, operator_id)
            await audit.record(
                conn,
                operator_id=operator_id,
                username=username,
                action="login",
                remote_addr=address,
            )
            failed = False
    if failed:
        await ratelimit.record_failure(rt.redis, prefix, username, address)
        return _login_page(request, error="Wrong username or password.", status_code=401)
    await ratelimit.clear_user(rt.redis, prefix, username, address)
    response = RedirectResponse(
        safe_next(first(fields, "next") or HOME), status_code=303, headers=SECURITY_HEADERS
    )
    response.set_cookie(
        sessions.COOKIE,
        sessions.sign(sessions.signing_key(rt.settings), token),
        max_age=int(sessions.SESSION_TTL.total_seconds()),
        path="/admin",
        httponly=True,
        secure=sessions.secure_cookies(rt.settings),
        samesite="strict",
    )
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path="/admin/login")
    return response


@router.post("/admin/logout", include_in_schema=False)
async def logout(request: Request) -> Response:
    who, _ = await checked_form(request)
    rt = runtime(request)
    async with global_scope(rt.pool) as conn:
        await sessions.close_session(conn, who.session_hash)
        await audit.record(
            conn,
            operator_id=who.id,
            username=who.username,
            action="logout",
            remote_addr=client_address(request),
        )
    response = RedirectResponse("/admin/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(sessions.COOKIE, path="/admin")
    return response
