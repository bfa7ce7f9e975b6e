"""The fair job queue on Redis: groups (shops) take turns, per-group and global caps held by
leases, retries, deferrals, a dead-letter set, transactional enqueue through the outbox, and a
Shopify cost budget per shop. Lua scripts make every state change atomic.
"""

from neanelu.queue.client import JobSpec, Queue, QueueClient, Reservation
from neanelu.queue.context import JobContext, Resources
from neanelu.queue.errors import Defer, Fatal, GroupFull, Retry
from neanelu.queue.jobs import DeadJob, EnqueueResult, FailResult, Job, JobInfo, QueueCounts
from neanelu.queue.ratelimit import CostLimiter, ShopBudget, ThrottleStatus, throttle_delay
from neanelu.queue.registry import BoundTask, Registry, TaskHandle
from neanelu.queue.settings import (
    AI_BATCH,
    BULK,
    QUEUE_NAMES,
    SYNC,
    WEBHOOK,
    QueueSettings,
    default_queues,
)

__all__ = [
    "AI_BATCH",
    "BULK",
    "QUEUE_NAMES",
    "SYNC",
    "WEBHOOK",
    "BoundTask",
    "CostLimiter",
    "DeadJob",
    "Defer",
    "EnqueueResult",
    "FailResult",
    "Fatal",
    "GroupFull",
    "Job",
    "JobContext",
    "JobInfo",
    "JobSpec",
    "Queue",
    "QueueClient",
    "QueueCounts",
    "QueueSettings",
    "Registry",
    "Reservation",
    "Resources",
    "Retry",
    "ShopBudget",
    "TaskHandle",
    "ThrottleStatus",
    "default_queues",
    "throttle_delay",
]
