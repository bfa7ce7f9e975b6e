"""Operator commands for the CLI: inspect, retry and purge the dead-letter (or failed) set."""

from __future__ import annotations

from neanelu.queue.client import QueueClient
from neanelu.queue.jobs import JobInfo

BATCH = 500


async def list_dead(
    client: QueueClient, queue: str, *, which: str = "dead", limit: int = 50, offset: int = 0
) -> list[JobInfo]:
    """Oldest first. `which` is `dead` (attempts or stalls exhausted) or `failed` (Fatal)."""
    q = client.queue(queue)
    infos = [
        await q.job_info(job_id)
        for job_id in await q.terminal_ids(which, limit=limit, offset=offset)
    ]
    return [info for info in infos if info is not None]


async def retry_dead(
    client: QueueClient, queue: str, job_ids: list[str] | None = None, *, which: str = "dead"
) -> int:
    """Give jobs a second life with fresh attempts (all of the set when `job_ids` is None)."""
    return await _apply(client, queue, "retry", which, job_ids)


async def purge_dead(
    client: QueueClient, queue: str, job_ids: list[str] | None = None, *, which: str = "dead"
) -> int:
    """Delete jobs from the set for good (all of it when `job_ids` is None)."""
    return await _apply(client, queue, "purge", which, job_ids)


async def _apply(
    client: QueueClient, queue: str, op: str, which: str, job_ids: list[str] | None
) -> int:
    q = client.queue(queue)
    run = q.retry_terminal if op == "retry" else q.purge_terminal
    if job_ids is not None:
        total = 0
        for i in range(0, len(job_ids), BATCH):
            total += await run(job_ids[i : i + BATCH], which)
        return total
    total = 0
    # Always from the head: each batch leaves the set, so the next batch is again at offset 0.
    while batch := await q.terminal_ids(which, limit=BATCH):
        moved = await run(batch, which)
        total += moved
        if moved == 0:
            break
    return total
