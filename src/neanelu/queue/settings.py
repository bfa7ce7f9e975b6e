"""Per-queue settings: each of the four queues has its own lease, retry and budget habits."""

from __future__ import annotations

from typing import Final

import msgspec

from neanelu.config import Settings

SYNC: Final = "sync"
WEBHOOK: Final = "webhook"
BULK: Final = "bulk"
AI_BATCH: Final = "ai-batch"
QUEUE_NAMES: Final = (SYNC, WEBHOOK, BULK, AI_BATCH)


class QueueSettings(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    group_concurrency: int = 2
    global_concurrency: int = 50
    # A worker renews its leases every third of this; a crashed worker's job runs again after it.
    lease_ms: int = 30_000
    max_attempts: int = 5
    # Retries wait base * 2^(attempt-1), capped, times a jitter in [0.5, 1) so a burst of failures
    # does not come back as a burst.
    backoff_base_s: float = 1.0
    backoff_max_s: float = 600.0
    # A job whose lease expired this many times is dead-lettered: it probably kills its worker.
    max_stalls: int = 3
    # Unfinished jobs one group may hold; enqueue beyond it is refused (0 means unbounded).
    max_group_size: int = 0
    # Share of a shop's Shopify cost bucket this queue's jobs may use; the rest is headroom for
    # webhooks, which must not wait behind a long sync.
    budget_share: float = 0.9
    events_maxlen: int = 10_000
    # Completed jobs leave a tombstone this long so a re-enqueue with the same id (an outbox relay
    # that crashed after pushing) stays a no-op.
    keep_completed_ms: int = 86_400_000
    # Its jobs hold a slot for minutes (a bulk ingest, an embedding run). A worker that also takes
    # short jobs lets long ones fill all its slots but one, so a delivery or a tick never waits
    # for a long job to end (the worker_kill drill saw webhooks wait 8 minutes behind embeddings).
    long_jobs: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.group_concurrency <= 10_000 or not 1 <= self.global_concurrency:
            raise ValueError(f"queue {self.name}: concurrency must be at least 1")
        if self.lease_ms < 100 or self.max_attempts < 1 or self.max_stalls < 0:
            raise ValueError(f"queue {self.name}: lease, attempts or stalls out of range")
        if not 0.0 < self.budget_share <= 1.0:
            raise ValueError(f"queue {self.name}: budget_share must be in (0, 1]")


def default_queues(settings: Settings) -> dict[str, QueueSettings]:
    """The four queues with the caps from the environment."""
    group = settings.group_concurrency
    total = settings.global_concurrency
    return {
        SYNC: QueueSettings(name=SYNC, group_concurrency=group, global_concurrency=total),
        WEBHOOK: QueueSettings(
            name=WEBHOOK,
            group_concurrency=group,
            global_concurrency=total,
            max_attempts=10,
            backoff_base_s=2.0,
            budget_share=1.0,
        ),
        # A bulk ingest runs for minutes: a longer lease means fewer renewals, and its heartbeat
        # keeps it alive however long it takes.
        BULK: QueueSettings(
            name=BULK,
            group_concurrency=group,
            global_concurrency=total,
            lease_ms=120_000,
            max_attempts=3,
            backoff_base_s=30.0,
            long_jobs=True,
        ),
        AI_BATCH: QueueSettings(
            name=AI_BATCH,
            group_concurrency=group,
            global_concurrency=total,
            lease_ms=120_000,
            backoff_base_s=30.0,
            long_jobs=True,
        ),
    }
