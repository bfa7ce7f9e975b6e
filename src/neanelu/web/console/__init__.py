"""The operator console at /admin: server-rendered pages over the console's read functions, with
operator accounts, signed sessions, CSRF checks, rate-limited logins and an audit log."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException

from neanelu.web.console.deps import LoginRequired
from neanelu.web.console.errors import http_error, validation_error
from neanelu.web.console.routes import router


async def _to_login(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/admin/login?next={exc.next_path}", status_code=303)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _to_login)
    # Pages under /admin only; every other path keeps FastAPI's JSON answers.
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)


__all__ = ["install", "router"]
