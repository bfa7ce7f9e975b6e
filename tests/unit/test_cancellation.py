"""A cancellation swallowed under a loop (Python 3.11's wait_for) still ends the loop."""

from __future__ import annotations

import asyncio
import contextlib

from neanelu.cancellation import raise_if_cancelling


async def test_a_loop_whose_await_swallowed_its_cancel_ends_cancelled() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            # What 3.11's wait_for does when its inner await finished as it was cancelled.
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(30)
            raise_if_cancelling()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait([task], timeout=5)
    assert task.cancelled()
    assert rounds == 1


async def test_a_task_nobody_cancelled_goes_on() -> None:
    raise_if_cancelling()  # no request pending: nothing raised
    assert asyncio.current_task() is not None
