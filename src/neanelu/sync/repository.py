"""sync_runs rows and their attempts. Every function runs inside the caller's tenant scope."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_one


@dataclass(slots=True)
class SyncRun:
    id: UUID
    shop_id: UUID
    kind: str
    status: str
    phase: str
    bulk_operations: dict[str, str] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    bytes: int = 0
    bad_lines: int = 0
    attempts: int = 0
    error: str | None = None
    updated_since: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_at: datetime | None = None


_COLUMNS = sql.SQL(
    "id, shop_id, kind, status, phase, bulk_operations, counts, bytes, bad_lines, attempts, error,"
    " updated_since, started_at, finished_at, created_at"
)


async def create_run(
    conn: Conn, shop_id: UUID, kind: str, updated_since: datetime | None
) -> SyncRun:
    query = sql.SQL(
        "INSERT INTO sync_runs (shop_id, kind, updated_since) VALUES (%s, %s, %s) RETURNING {}"
    ).format(_COLUMNS)
    row = await fetch_one(conn, SyncRun, query, (shop_id, kind, updated_since))
    assert row is not None
    return row


async def active_run(conn: Conn, kind: str) -> SyncRun | None:
    query = sql.SQL(
        "SELECT {} FROM sync_runs WHERE kind = %s AND status IN ('queued', 'running')"
        " ORDER BY created_at LIMIT 1"
    ).format(_COLUMNS)
    return await fetch_one(conn, SyncRun, query, (kind,))


async def get_run(conn: Conn, run_id: UUID) -> SyncRun | None:
    query = sql.SQL("SELECT {} FROM sync_runs WHERE id = %s").format(_COLUMNS)
    return await fetch_one(conn, SyncRun, query, (run_id,))


async def latest_runs(conn: Conn, limit: int = 10) -> list[SyncRun]:
    query = sql.SQL("SELECT {} FROM sync_runs ORDER BY created_at DESC LIMIT %s").format(_COLUMNS)
    return await fetch_all(conn, SyncRun, query, (limit,))


@dataclass(slots=True)
class RunAttempt:
    """One attempt of a run, with its ages as the database's clock sees them."""

    run_id: UUID
    attempt: int
    holder: str
    job_id: str | None
    started_at: datetime
    heartbeat_at: datetime
    lease_until: datetime
    ended_at: datetime | None
    outcome: str | None
    error: str | None
    # Seconds since the last heartbeat, and since the lease ran out (negative: still held).
    heartbeat_age_s: float = 0.0
    lease_expired_s: float = 0.0

    @property
    def open(self) -> bool:
        return self.ended_at is None


_ATTEMPT_COLUMNS = sql.SQL(
    "run_id, attempt, holder, job_id, started_at, heartbeat_at, lease_until, ended_at, outcome,"
    " error, extract(epoch FROM now() - heartbeat_at)::float8 AS heartbeat_age_s,"
    " extract(epoch FROM now() - lease_until)::float8 AS lease_expired_s"
)

# Closes attempts of the run that never reported their end (their holder died): the next attempt
# closes those whose lease ran out; the end of the run, or the queue giving up, all the others.
_ABANDON = (
    "UPDATE sync_run_attempts SET ended_at = greatest(heartbeat_at, started_at),"
    " outcome = 'abandoned', error = 'the attempt stopped without reporting: ' || holder ||"
    " ' last renewed its lease at ' || to_char(heartbeat_at AT TIME ZONE 'UTC',"
    " 'YYYY-MM-DD HH24:MI:SS') || ' UTC (killed, hung or cut off from the database)'"
    " WHERE run_id = %s AND ended_at IS NULL AND attempt <> %s AND (NOT %s OR lease_until < now())"
    " RETURNING attempt, error"
)


@dataclass(frozen=True, slots=True)
class _Abandoned:
    attempt: int
    error: str


@dataclass(frozen=True, slots=True)
class _Started:
    shop_id: UUID
    attempts: int


async def _abandon(conn: Conn, run_id: UUID, *, but: int = 0, expired_only: bool) -> list[str]:
    """The errors written on the attempts closed, in attempt order."""
    rows = await fetch_all(conn, _Abandoned, _ABANDON, (run_id, but, expired_only))
    return [row.error for row in sorted(rows, key=lambda row: row.attempt)]


async def start_attempt(
    conn: Conn, run_id: UUID, holder: str, job_id: str | None, lease_s: float
) -> int:
    """Counts a new attempt of the run and records who holds it; returns its number. The run's
    last error stays until the run ends (each attempt's own error is in its attempt row)."""
    # An attempt whose lease still runs may be alive (a CLI run beside a worker's): left open.
    abandoned = await _abandon(conn, run_id, expired_only=True)
    row = await fetch_one(
        conn,
        _Started,
        "UPDATE sync_runs SET status = 'running', attempts = attempts + 1,"
        " error = coalesce(%s, error), started_at = coalesce(started_at, now()),"
        " updated_at = now() WHERE id = %s RETURNING shop_id, attempts",
        (abandoned[-1] if abandoned else None, run_id),
    )
    assert row is not None, f"sync run {run_id} does not exist"
    shop_id, attempt = row.shop_id, row.attempts
    await conn.execute(
        "INSERT INTO sync_run_attempts (shop_id, run_id, attempt, holder, job_id, lease_until)"
        " VALUES (%s, %s, %s, %s, %s, now() + make_interval(secs => %s))",
        (shop_id, run_id, attempt, holder[:200], job_id[:200] if job_id else None, lease_s),
    )
    return int(attempt)


async def renew_attempt(conn: Conn, run_id: UUID, attempt: int, lease_s: float) -> bool:
    """False when the attempt was closed meanwhile (another holder found it abandoned)."""
    cur = await conn.execute(
        "UPDATE sync_run_attempts SET heartbeat_at = now(),"
        " lease_until = now() + make_interval(secs => %s)"
        " WHERE run_id = %s AND attempt = %s AND ended_at IS NULL",
        (lease_s, run_id, attempt),
    )
    return cur.rowcount == 1


async def end_attempt(
    conn: Conn, run_id: UUID, attempt: int, outcome: str, error: str | None
) -> None:
    """How the attempt ended; an `error` is also the run's last error until the run ends."""
    await conn.execute(
        "UPDATE sync_run_attempts SET ended_at = now(), heartbeat_at = now(), outcome = %s,"
        " error = %s WHERE run_id = %s AND attempt = %s",
        (outcome, error, run_id, attempt),
    )
    if error is not None:
        await conn.execute(
            "UPDATE sync_runs SET error = %s, updated_at = now() WHERE id = %s AND status IN"
            " ('queued', 'running')",
            (error, run_id),
        )


async def fail_unfinished(conn: Conn, run_id: UUID, reason: str) -> bool:
    """Fail the run unless it already ended (the queue gave up on its job): attempts that never
    reported are closed as abandoned. False when the run had ended."""
    await _abandon(conn, run_id, expired_only=False)
    cur = await conn.execute(
        "UPDATE sync_runs SET status = 'failed', error = %s, finished_at = now(),"
        " updated_at = now() WHERE id = %s AND status IN ('queued', 'running')",
        (reason, run_id),
    )
    return cur.rowcount == 1


async def attempts_of(conn: Conn, run_id: UUID) -> list[RunAttempt]:
    query = sql.SQL("SELECT {} FROM sync_run_attempts WHERE run_id = %s ORDER BY attempt").format(
        _ATTEMPT_COLUMNS
    )
    return await fetch_all(conn, RunAttempt, query, (run_id,))


async def record_operation(conn: Conn, run_id: UUID, phase: str, operation_id: str) -> None:
    await conn.execute(
        "UPDATE sync_runs SET bulk_operations = bulk_operations || jsonb_build_object(%s::text, %s::text),"
        " updated_at = now() WHERE id = %s",
        (phase, operation_id, run_id),
    )


async def forget_operation(conn: Conn, run_id: UUID, phase: str) -> None:
    await conn.execute(
        "UPDATE sync_runs SET bulk_operations = bulk_operations - %s::text, updated_at = now()"
        " WHERE id = %s",
        (phase, run_id),
    )


async def record_progress(
    conn: Conn, run_id: UUID, phase: str, counts: dict[str, Any], bytes_read: int, bad_lines: int
) -> None:
    await conn.execute(
        "UPDATE sync_runs SET phase = %s, counts = counts || %s, bytes = %s, bad_lines = %s,"
        " updated_at = now() WHERE id = %s",
        (phase, Jsonb(counts), bytes_read, bad_lines, run_id),
    )


async def finish_run(
    conn: Conn, run_id: UUID, status: str, error: str | None, *, attempt: int = 0
) -> None:
    """The run's end, reached by `attempt`: any other attempt still open never reported."""
    await _abandon(conn, run_id, but=attempt, expired_only=False)
    await conn.execute(
        "UPDATE sync_runs SET status = %s, error = %s, phase = CASE WHEN %s = 'completed'"
        " THEN 'done' ELSE phase END, finished_at = now(), updated_at = now() WHERE id = %s",
        (status, error, status, run_id),
    )


async def mark_shop_synced(conn: Conn, shop_id: UUID, kind: str) -> None:
    column = "last_full_sync_at" if kind == "full" else "last_incremental_sync_at"
    await conn.execute(
        sql.SQL("UPDATE shops SET {} = now() WHERE id = %s").format(sql.Identifier(column)),
        (shop_id,),
    )
