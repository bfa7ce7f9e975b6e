"""Cancellation that Python 3.11 can lose.

On 3.11, `asyncio.wait_for` returns normally when what it awaits finishes in the same step as its
task is cancelled, and the CancelledError is gone (cpython#86296; 3.12 rewrote wait_for). The
clients' calls use it underneath, so a loop meant to run until cancelled may go on after its
cancel, and whoever cancelled it and waits for its end hangs. The request still counts on the task
(`Task.cancelling()`): such loops call `raise_if_cancelling()` once a round.
"""

from __future__ import annotations

import asyncio


def raise_if_cancelling() -> None:
    """Raise CancelledError if the running task has a cancellation request it has not yet
    seen through."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
