"""The operator console at /admin: server-rendered pages over the console's read functions, with
operator accounts, signed sessions, CSRF checks, rate-limited logins and an audit log."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from neanelu.web.console.deps import LoginRequired
from neanelu.web.console.routes import router


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/admin/login?next={exc.next_path}", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _to_login)


__all__ = ["install", "router"]
