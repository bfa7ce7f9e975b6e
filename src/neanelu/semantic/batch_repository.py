"""The records of Batch API runs (migration 0012), in the caller's tenant transaction: the run a
queue job owns, its requests (their custom_id is their id) and the OpenAI batches they went in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from neanelu.db.pool import Conn
from neanelu.db.rows import fetch_all, fetch_one, fetch_scalar


@dataclass(frozen=True, slots=True)
class BatchRun:
    id: UUID
    status: str
    submitted_at: datetime | None


@dataclass(frozen=True, slots=True)
class RequestRow:
    id: UUID
    attempts: int
    product_ids: list[int]
    content_hashes: list[bytes]
    inputs: list[str]


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: UUID
    status: str
    openai_batch_id: str | None


@dataclass(frozen=True, slots=True)
class _InFlight:
    product_id: int
    content_hash: bytes


async def find_run(conn: Conn, shop_id: UUID, job_id: str) -> BatchRun | None:
    return await fetch_one(
        conn,
        BatchRun,
        "SELECT id, status, submitted_at FROM embedding_runs WHERE shop_id = %s AND job_id = %s",
        (shop_id, job_id),
    )


async def start_run(
    conn: Conn, shop_id: UUID, job_id: str, source: str, provider: str, model: str
) -> UUID:
    run_id = await fetch_scalar(
        conn,
        UUID,
        "INSERT INTO embedding_runs (shop_id, source, provider, model, job_id) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (shop_id, source, provider, model, job_id),
    )
    assert run_id is not None
    return run_id


async def add_figures(
    conn: Conn,
    run_id: UUID,
    *,
    queued: int = 0,
    embedded: int = 0,
    skipped: int = 0,
    removed: int = 0,
    tokens: int = 0,
    failed: int = 0,
) -> None:
    await conn.execute(
        "UPDATE embedding_runs SET queued = queued + %s, embedded = embedded + %s, "
        "skipped = skipped + %s, removed = removed + %s, tokens = tokens + %s, "
        "failed = failed + %s WHERE id = %s",
        (queued, embedded, skipped, removed, tokens, failed, run_id),
    )


async def mark_submitted(conn: Conn, run_id: UUID) -> None:
    await conn.execute("UPDATE embedding_runs SET submitted_at = now() WHERE id = %s", (run_id,))


async def fail_job_run(conn: Conn, shop_id: UUID, job_id: str, error: str) -> bool:
    """The run a job owned, failed if it was still running; True when it was."""
    cur = await conn.execute(
        "UPDATE embedding_runs SET status = 'failed', error = %s, finished_at = now() "
        "WHERE shop_id = %s AND job_id = %s AND status = 'running'",
        (error, shop_id, job_id),
    )
    return cur.rowcount > 0


async def finish_run(conn: Conn, run_id: UUID, status: str, error: str | None) -> None:
    await conn.execute(
        "UPDATE embedding_runs SET status = %s, error = %s, finished_at = now() WHERE id = %s",
        (status, error, run_id),
    )


async def in_flight(
    conn: Conn, shop_id: UUID, model: str, product_ids: Sequence[int]
) -> dict[int, bytes]:
    """Products with a request of this model still queued or in a batch, by the hash sent."""
    found = await fetch_all(
        conn,
        _InFlight,
        "SELECT p.product_id, p.content_hash FROM embedding_requests r "
        "JOIN embedding_runs u ON u.id = r.run_id "
        "CROSS JOIN LATERAL unnest(r.product_ids, r.content_hashes) AS p(product_id, content_hash) "
        # Only a running run's requests: a failed run's will never be answered.
        "WHERE r.shop_id = %s AND u.model = %s AND u.status = 'running' "
        "AND r.state IN ('queued', 'submitted') "
        "AND p.product_id = ANY(%s)",
        (shop_id, model, list(product_ids)),
    )
    return {int(r.product_id): bytes(r.content_hash) for r in found}


async def add_request(
    conn: Conn,
    shop_id: UUID,
    run_id: UUID,
    product_ids: Sequence[int],
    content_hashes: Sequence[bytes],
    inputs: Sequence[str],
) -> None:
    await conn.execute(
        "INSERT INTO embedding_requests (shop_id, run_id, product_ids, content_hashes, inputs) "
        "VALUES (%s, %s, %s, %s, %s)",
        (shop_id, run_id, list(product_ids), list(content_hashes), list(inputs)),
    )


_REQUEST_COLUMNS = "id, attempts, product_ids, content_hashes, inputs"


async def queued_requests(
    conn: Conn, run_id: UUID, *, max_inputs: int, max_requests: int
) -> list[RequestRow]:
    """The oldest queued requests, as many as one batch may hold at most (by inputs and by
    requests): a run of a million products is dispatched a batch at a time, never all in memory."""
    return await fetch_all(
        conn,
        RequestRow,
        f"SELECT {_REQUEST_COLUMNS} FROM ("  # noqa: S608 (a constant)
        f"  SELECT {_REQUEST_COLUMNS}, sum(cardinality(product_ids)) OVER (ORDER BY id) AS upto "
        "  FROM embedding_requests WHERE run_id = %s AND state = 'queued'"
        ") AS q WHERE upto - cardinality(product_ids) < %s ORDER BY id LIMIT %s",
        (run_id, max_inputs, max_requests),
    )


async def has_queued(conn: Conn, run_id: UUID) -> bool:
    found = await fetch_scalar(
        conn,
        bool,
        "SELECT EXISTS (SELECT 1 FROM embedding_requests WHERE run_id = %s AND state = 'queued')",
        (run_id,),
    )
    return bool(found)


async def batch_requests(conn: Conn, batch_id: UUID) -> list[RequestRow]:
    return await fetch_all(
        conn,
        RequestRow,
        f"SELECT {_REQUEST_COLUMNS} FROM embedding_requests "  # noqa: S608 (a constant)
        "WHERE batch_id = %s AND state = 'submitted' ORDER BY id",
        (batch_id,),
    )


async def new_batch(conn: Conn, shop_id: UUID, run_id: UUID, request_ids: Sequence[UUID]) -> UUID:
    """A batch row (`submitting`) with its requests moved into it, one attempt more each."""
    batch_id = await fetch_scalar(
        conn,
        UUID,
        "INSERT INTO embedding_batches (shop_id, run_id, requests) VALUES (%s, %s, %s) "
        "RETURNING id",
        (shop_id, run_id, len(request_ids)),
    )
    assert batch_id is not None
    await conn.execute(
        "UPDATE embedding_requests SET state = 'submitted', batch_id = %s, "
        "attempts = attempts + 1 WHERE id = ANY(%s)",
        (batch_id, list(request_ids)),
    )
    return batch_id


async def batch_sent(
    conn: Conn, batch_id: UUID, input_file_id: str, openai_batch_id: str, status: str
) -> None:
    await conn.execute(
        "UPDATE embedding_batches SET input_file_id = %s, openai_batch_id = %s, status = %s, "
        "polled_at = now() WHERE id = %s",
        (input_file_id, openai_batch_id, status, batch_id),
    )


async def open_batches(conn: Conn, run_id: UUID) -> list[BatchRow]:
    return await fetch_all(
        conn,
        BatchRow,
        "SELECT id, status, openai_batch_id FROM embedding_batches "
        "WHERE run_id = %s AND applied_at IS NULL ORDER BY id",
        (run_id,),
    )


async def batch_polled(
    conn: Conn,
    batch_id: UUID,
    status: str,
    output_file_id: str | None,
    error_file_id: str | None,
    error: str | None,
    *,
    applied: bool,
) -> None:
    await conn.execute(
        "UPDATE embedding_batches SET status = %s, output_file_id = %s, error_file_id = %s, "
        "error = coalesce(%s, error), polled_at = now(), "
        "applied_at = CASE WHEN %s THEN now() END WHERE id = %s",
        (status, output_file_id, error_file_id, error, applied, batch_id),
    )


async def request_done(conn: Conn, request_id: UUID) -> None:
    await conn.execute(
        "UPDATE embedding_requests SET state = 'done', error = NULL WHERE id = %s", (request_id,)
    )


async def request_again(conn: Conn, request_id: UUID, error: str, *, give_up: bool) -> None:
    """Back to `queued` for another batch, or `failed` when its attempts are spent."""
    await conn.execute(
        "UPDATE embedding_requests SET state = %s, batch_id = CASE WHEN %s THEN batch_id END, "
        "error = %s WHERE id = %s",
        ("failed" if give_up else "queued", give_up, error, request_id),
    )


async def failed_products(conn: Conn, run_id: UUID) -> int:
    count = await fetch_scalar(
        conn,
        int,
        "SELECT coalesce(sum(cardinality(product_ids)), 0)::integer FROM embedding_requests "
        "WHERE run_id = %s AND state = 'failed'",
        (run_id,),
    )
    return count or 0
