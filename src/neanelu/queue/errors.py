"""What a handler raises to tell the worker how a job ended, other than by returning."""

from __future__ import annotations


class QueueError(Exception):
    """Base of the queue's own errors."""


class GroupFull(QueueError):
    """Enqueue refused: the group already holds its maximum of unfinished jobs (backpressure)."""

    def __init__(self, queue: str, group: str) -> None:
        super().__init__(f"queue {queue}: group {group} is full")
        self.queue = queue
        self.group = group


class Defer(Exception):
    """Run this job again after `seconds` without using an attempt (throttling, a busy resource).

    With `block_group` the whole group (the shop) waits too, and this job stays first in its line:
    used when the shop's Shopify bucket is empty, so no other job of the shop starts before it.
    """

    def __init__(self, seconds: float, *, block_group: bool = False, reason: str = "") -> None:
        super().__init__(reason or f"deferred {seconds:.3f}s")
        self.seconds = max(0.0, seconds)
        self.block_group = block_group
        self.reason = reason


class Retry(Exception):
    """Use an attempt and run again: after `seconds`, or after the queue's backoff when None."""

    def __init__(self, seconds: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        self.seconds = seconds


class Fatal(Exception):
    """The job can never succeed (bad payload, shop gone): no retry, straight to the failed set."""
