"""Request dependencies shared by the domain routes: the process runtime and its parts."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from neanelu.shops.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime = getattr(request.app.state, "runtime", None)
    if not isinstance(runtime, Runtime):
        raise RuntimeError("the app's lifespan did not set up a Runtime")
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
