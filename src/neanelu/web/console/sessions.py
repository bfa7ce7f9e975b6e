"""Operator sessions: a random token in a signed cookie, its SHA-256 in `console_sessions`.

The cookie is HMAC-signed with a key derived from the deployment's encryption key, so a forged or
altered cookie is refused before any database lookup; the stored hash lets logout and
`disabled_at` end a session at once. Each session carries its own CSRF token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from neanelu.config import Mode, Settings, decode_key
from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_one

COOKIE = "neanelu_console"
LOGIN_CSRF_COOKIE = "neanelu_console_login"
SESSION_TTL = timedelta(hours=12)
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Operator:
    id: UUID
    username: str
    csrf_token: str
    session_hash: bytes


@dataclass(frozen=True, slots=True)
class _SessionRow:
    id: UUID
    username: str
    csrf_token: str


def signing_key(settings: Settings) -> bytes:
    root = decode_key(settings.encryption_key_256.get_secret_value())
    return hmac.new(root, b"neanelu console session cookie v1", hashlib.sha256).digest()


def secure_cookies(settings: Settings) -> bool:
    """Secure outside local mode (local runs on plain http://127.0.0.1)."""
    return settings.mode is not Mode.LOCAL


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, token: bytes) -> str:
    mac = hmac.new(key, token, hashlib.sha256).digest()
    return f"{_b64(token)}.{_b64(mac)}"


def unsign(key: bytes, value: str) -> bytes | None:
    """The token of a cookie whose signature holds; None for anything else."""
    if len(value) > 200 or value.count(".") != 1:
        return None
    body, mac = value.split(".")
    try:
        token, given = _unb64(body), _unb64(mac)
    except ValueError:
        return None
    expected = hmac.new(key, token, hashlib.sha256).digest()
    return token if len(token) == 32 and hmac.compare_digest(expected, given) else None


def token_hash(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


async def open_session(conn: Conn, operator_id: UUID) -> tuple[bytes, str]:
    """A new session for the operator: (cookie token, CSRF token)."""
    token, csrf = secrets.token_bytes(32), secrets.token_urlsafe(32)
    await conn.execute("DELETE FROM console_sessions WHERE expires_at < now()")
    await conn.execute(
        "INSERT INTO console_sessions (token_hash, operator_id, csrf_token, expires_at)"
        " VALUES (%s, %s, %s, now() + %s)",
        (token_hash(token), operator_id, csrf, SESSION_TTL),
    )
    return token, csrf


async def find_session(conn: Conn, token: bytes) -> Operator | None:
    digest = token_hash(token)
    row = await fetch_one(
        conn,
        _SessionRow,
        "SELECT o.id, o.username, s.csrf_token FROM console_sessions s"
        " JOIN console_operators o ON o.id = s.operator_id"
        " WHERE s.token_hash = %s AND s.expires_at > now() AND o.disabled_at IS NULL",
        (digest,),
    )
    return Operator(row.id, row.username, row.csrf_token, digest) if row else None


async def close_session(conn: Conn, digest: bytes) -> None:
    await conn.execute("DELETE FROM console_sessions WHERE token_hash = %s", (digest,))


def csrf_matches(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())
