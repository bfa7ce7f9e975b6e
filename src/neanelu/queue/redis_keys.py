"""Every Redis key the queue and the cost limiter use, in one place (as arq keeps its prefixes).

All keys of one queue share the hash tag `{<queue>}`, so a queue lives in one Redis Cluster slot and
its Lua scripts may touch any of them atomically. The scripts derive per-group and per-job keys from
the queue base they receive as KEYS[1]; the suffixes below must match `scripts/lib.lua`.
"""

from __future__ import annotations

from typing import Final

DEFAULT_PREFIX: Final = "neanelu"

# Suffixes under a queue base `<prefix>:{<queue>}`; mirrored in scripts/lib.lua.
JOB: Final = "job"  # <base>:job:<id>        hash: one job's spec and mutable state
GROUP: Final = "g"  # <base>:g:<group>:wait   zset by priority then FIFO; :active zset of leases
READY: Final = "ready"  # zset: groups with runnable work, scored by a round-robin ticket
ACTIVE: Final = "active"  # zset: every lease of the queue, scored by its deadline (ms)
DELAYED: Final = "delayed"  # zset: jobs due later (retries, deferrals, delayed enqueues)
BLOCKED: Final = "blocked"  # zset: groups held back until a time (Shopify throttling)
PAUSED: Final = "paused"  # set: groups paused by an operator or an uninstall
GROUP_CONCURRENCY: Final = "gconc"  # hash: per-group concurrency overrides
GROUP_SIZE: Final = "gsize"  # hash: unfinished jobs per group (backpressure)
DEAD: Final = "dead"  # zset: dead-letter jobs (attempts or stalls exhausted), scored by time
FAILED: Final = "failed"  # zset: jobs a handler rejected as Fatal, scored by time
STATS: Final = "stats"  # hash: enqueued / completed / failed / dead totals
EVENTS: Final = "events"  # stream of state changes

WORKERS: Final = "workers"  # <prefix>:workers zset: worker id -> last heartbeat (ms)
RATE_LIMIT: Final = "rl"  # <prefix>:rl:{<shop>} hash: one shop's cost budget


def queue_base(prefix: str, queue: str) -> str:
    return f"{prefix}:{{{queue}}}"


def job_key(prefix: str, queue: str, job_id: str) -> str:
    return f"{queue_base(prefix, queue)}:{JOB}:{job_id}"


def group_key(prefix: str, queue: str, group: str, kind: str) -> str:
    """`kind` is `wait` or `active`."""
    return f"{queue_base(prefix, queue)}:{GROUP}:{group}:{kind}"


def queue_key(prefix: str, queue: str, suffix: str) -> str:
    return f"{queue_base(prefix, queue)}:{suffix}"


def workers_key(prefix: str) -> str:
    return f"{prefix}:{WORKERS}"


def budget_key(prefix: str, shop: str) -> str:
    # The shop is the hash tag: a shop's budget is shared by every queue, so it cannot live in one
    # queue's slot; one key per shop keeps each script single-key and cluster-safe.
    return f"{prefix}:{RATE_LIMIT}:{{{shop}}}"
