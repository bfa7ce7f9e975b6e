"""Who is asking: the operator behind the session cookie, and the CSRF check for every POST."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import HTTPException, Request

from neanelu.db.pool import global_scope
from neanelu.runtime import Runtime
from neanelu.web.console import sessions
from neanelu.web.console.sessions import CSRF_FIELD, CSRF_HEADER, Operator
from neanelu.web.deps import request_runtime

FORM_TYPE = "application/x-www-form-urlencoded"


class LoginRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def runtime(request: Request) -> Runtime:
    return request_runtime(request)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def session_operator(request: Request) -> Operator | None:
    raw = request.cookies.get(sessions.COOKIE)
    if not raw:
        return None
    rt = runtime(request)
    token = sessions.unsign(sessions.signing_key(rt.settings), raw)
    if token is None:
        return None
    async with global_scope(rt.pool) as conn:
        return await sessions.find_session(conn, token)


async def operator(request: Request) -> Operator:
    """Pages: an anonymous visitor is sent to the login page (and back here after it)."""
    found = await session_operator(request)
    if found is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/?=&"))
    return found


async def form(request: Request) -> dict[str, list[str]]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise HTTPException(415, f"expected {FORM_TYPE}")
    body = (await request.body()).decode("utf-8", "replace")
    return parse_qs(body, keep_blank_values=True, max_num_fields=2000)


def first(fields: dict[str, list[str]], name: str) -> str:
    values = fields.get(name)
    return values[0] if values else ""


async def checked_form(request: Request) -> tuple[Operator, dict[str, list[str]]]:
    """Every state-changing request: a live session, and its CSRF token in the form or header."""
    who = await session_operator(request)
    if who is None:
        raise HTTPException(403, "not signed in to the console")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    # A request with no form (a bare POST, JSON) can only carry the token in its header.
    fields = await form(request) if content_type == FORM_TYPE else {}
    given = request.headers.get(CSRF_HEADER) or first(fields, CSRF_FIELD)
    if not sessions.csrf_matches(who.csrf_token, given):
        raise HTTPException(403, "CSRF token missing or wrong")
    return who, fields
