"""Operator accounts: created from the CLI (`neanelu admin create-user`), never over the web."""

from __future__ import annotations

import re
from dataclasses import dataclass
from uuid import UUID

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_one, fetch_scalar
from neanelu.web.console import audit
from neanelu.web.console.passwords import hash_password, needs_rehash

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


class OperatorError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Credentials:
    """An enabled operator's id and password hash."""

    id: UUID
    password_hash: str


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise OperatorError(
            "username must be 1-64 characters of a-z, 0-9, '.', '_', '@' or '-',"
            " starting with a letter or digit"
        )
    return name


async def create(conn: Conn, username: str, password: str, *, replace: bool = False) -> UUID:
    """A new operator (or, with `replace`, a new password for an existing one)."""
    name = check_username(username)
    digest = hash_password(password)
    if replace:
        operator_id = await fetch_scalar(
            conn,
            UUID,
            "INSERT INTO console_operators (username, password_hash) VALUES (%s, %s)"
            " ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash,"
            " disabled_at = NULL, updated_at = now() RETURNING id",
            (name, digest),
        )
    else:
        operator_id = await fetch_scalar(
            conn,
            UUID,
            "INSERT INTO console_operators (username, password_hash) VALUES (%s, %s)"
            " ON CONFLICT (username) DO NOTHING RETURNING id",
            (name, digest),
        )
    if operator_id is None:
        raise OperatorError(f"operator {name!r} exists (use --reset-password to change it)")
    if replace:
        # A new password ends every session opened with the old one.
        await conn.execute("DELETE FROM console_sessions WHERE operator_id = %s", (operator_id,))
    await audit.record(
        conn,
        operator_id=operator_id,
        username="cli",
        action="operator.password_reset" if replace else "operator.create",
        target=name,
    )
    return operator_id


async def disable(conn: Conn, username: str) -> bool:
    name = check_username(username)
    operator_id = await fetch_scalar(
        conn,
        UUID,
        "UPDATE console_operators SET disabled_at = now(), updated_at = now()"
        " WHERE username = %s AND disabled_at IS NULL RETURNING id",
        (name,),
    )
    if operator_id is None:
        return False
    await conn.execute("DELETE FROM console_sessions WHERE operator_id = %s", (operator_id,))
    await audit.record(
        conn, operator_id=operator_id, username="cli", action="operator.disable", target=name
    )
    return True


async def credentials(conn: Conn, username: str) -> Credentials | None:
    """The id and password hash of an enabled operator."""
    return await fetch_one(
        conn,
        Credentials,
        "SELECT id, password_hash FROM console_operators WHERE username = %s AND disabled_at IS NULL",
        (username,),
    )


async def logged_in(conn: Conn, operator_id: UUID, password: str, stored_hash: str) -> None:
    """Stamp the login, upgrading the hash when argon2's parameters have moved on."""
    if needs_rehash(stored_hash):
        await conn.execute(
            "UPDATE console_operators SET password_hash = %s WHERE id = %s",
            (hash_password(password), operator_id),
        )
    await conn.execute(
        "UPDATE console_operators SET last_login_at = now() WHERE id = %s", (operator_id,)
    )
