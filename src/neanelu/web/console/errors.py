"""Errors under /admin as pages a browser shows, not JSON: a wrong link or an expired form
should say what happened in the console's own frame. Elsewhere FastAPI's own handlers answer,
exactly as before."""

from __future__ import annotations

from http import HTTPStatus

from fastapi import Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException

from neanelu.web.console.render import page

PREFIX = "/admin"


def _reason(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith(PREFIX):
        return await http_exception_handler(request, exc)
    return page(
        request,
        "error.html",
        None,
        status_code=exc.status_code,
        headers=dict(exc.headers or {}),
        status_code_=exc.status_code,
        reason=_reason(exc.status_code),
        detail=str(exc.detail),
    )


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    if not request.url.path.startswith(PREFIX):
        return await request_validation_exception_handler(request, exc)
    # Name each wrong parameter and why, as the JSON answer would, without echoing its value.
    wrong = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg', 'invalid')}"
        for e in exc.errors()
    )
    return page(
        request,
        "error.html",
        None,
        status_code=422,
        status_code_=422,
        reason=_reason(422),
        detail=wrong or "the request is not valid",
    )
