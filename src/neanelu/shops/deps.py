"""Request dependencies shared by the domain routes: the process runtime and its parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from neanelu.shops.runtime import Runtime


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency would hop to a worker thread on every request.
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the app's lifespan did not set up a Runtime")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
