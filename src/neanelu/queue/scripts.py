"""The Lua scripts, loaded from package files and registered for EVALSHA."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Final

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

QUEUE_SCRIPTS: Final = (
    "enqueue",
    "reserve",
    "complete",
    "fail",
    "defer",
    "extend",
    "group",
    "terminal",
)


@cache
def script_source(name: str) -> str:
    """A queue script is lib.lua followed by its own file, so shared helpers exist exactly once
    in the repository yet every script stays self-contained for EVALSHA."""
    folder = resources.files("neanelu.queue").joinpath("scripts")
    own = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name == "budget":
        return own
    return folder.joinpath("lib.lua").read_text(encoding="utf-8") + "\n" + own


class QueueScripts:
    """Registered once per Redis client; calls go out as EVALSHA and reload on NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.enqueue = redis.register_script(script_source("enqueue"))
        self.reserve = redis.register_script(script_source("reserve"))
        self.complete = redis.register_script(script_source("complete"))
        self.fail = redis.register_script(script_source("fail"))
        self.defer = redis.register_script(script_source("defer"))
        self.extend = redis.register_script(script_source("extend"))
        self.group = redis.register_script(script_source("group"))
        self.terminal = redis.register_script(script_source("terminal"))


def budget_script(redis: Redis) -> AsyncScript:
    return redis.register_script(script_source("budget"))
