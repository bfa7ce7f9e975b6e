"""Templates, static files and the headers every console response carries."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape

from neanelu.web.console.sessions import CSRF_FIELD, Operator

# No inline script or style anywhere: the console's own files only, and no framing.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NOTICES = {
    "sync": "Full sync queued.",
    "parity": "Parity check queued: its result appears below when a worker has run it.",
    "paused": "Paused: running jobs finish, no new job of this shop starts.",
    "resumed": "Resumed.",
    "retried": "{n} job(s) retried.",
    "purged": "{n} job(s) purged.",
}
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _when(value: Any) -> str:
    """ISO timestamps (from jsonb) or datetimes as 'YYYY-MM-DD HH:MM:SS UTC'."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            return text
    if isinstance(value, datetime):
        return str(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
    return str(value)


def _ms(value: int | None) -> str:
    return _when(datetime.fromtimestamp(value / 1000, UTC)) if value else "—"


def _number(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _bytes(value: Any) -> str:
    n = float(value or 0)
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


env = Environment(
    loader=PackageLoader("neanelu.web.console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["when"] = _when
env.filters["ms"] = _ms
env.filters["number"] = _number
env.filters["filesize"] = _bytes
env.filters["pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)


def _static_files() -> dict[str, tuple[bytes, str, str]]:
    """name -> (body, content type, ETag), read once from the package."""
    found: dict[str, tuple[bytes, str, str]] = {}
    for entry in resources.files("neanelu.web.console").joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            body = entry.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            found[entry.name] = (body, STATIC_TYPES[suffix], etag)
    return found


STATIC = _static_files()


def static_response(name: str, request: Request) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    body, media_type, etag = found
    headers = {
        "ETag": etag,
        "Cache-Control": "public, max-age=3600",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def page(
    request: Request,
    template: str,
    operator: Operator | None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("notice", ""), "")
    n = request.query_params.get("n", "0")
    html = env.get_template(template).render(
        request_notice=notice.format(n=int(n) if n.isdigit() else 0),
        operator=operator,
        csrf_field=CSRF_FIELD,
        csrf_token=operator.csrf_token if operator else context.pop("login_csrf", ""),
        path=request.url.path,
        **context,
    )
    return HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )
