"""Request dependencies as `Annotated` aliases: a route says `rt: RuntimeDep` and gets the process
kernel the app's lifespan opened (`neanelu.runtime`), with no global look-up.

The domains' routers use these, so this module imports nothing above the kernel (import-linter
holds it below the domains; the rest of `web` is the composition root above them).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from neanelu.runtime import Runtime


def request_runtime(request: Request) -> Runtime:
    """The kernel the app's lifespan put on `app.state`, for code that holds the request."""
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the app's lifespan did not set up a Runtime")
    return runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency would hop to a worker thread on every request.
    return request_runtime(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
