"""The Lua scripts, loaded from package files and registered for EVALSHA."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError
from redis.typing import EncodableT, KeyT

_DEFINITION = re.compile(r"local (?:function )?([A-Za-z_]\w*)")
_NAME = re.compile(r"[A-Za-z_]\w*")


@cache
def script_source(name: str) -> str:
    """A queue script is the part of lib.lua it uses followed by its own file, so shared helpers
    exist exactly once in the repository yet every script stays self-contained for EVALSHA.

    Redis runs a script's whole text on every call, and each helper defined is a closure built
    anew each time: a script carries only the definitions it refers to (directly or through
    another helper), not all of lib.lua."""
    folder = resources.files("neanelu.queue").joinpath("scripts")
    own = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    if name == "budget":
        return own
    blocks = _definitions(folder.joinpath("lib.lua").read_text(encoding="utf-8"))
    wanted = set(_NAME.findall(own)) & blocks.keys()
    todo = list(wanted)
    while todo:
        for used in set(_NAME.findall(blocks[todo.pop()])) & blocks.keys():
            if used not in wanted:
                wanted.add(used)
                todo.append(used)
    # lib.lua defines each name before its first use, so its own order is a valid order.
    return "".join(text for n, text in blocks.items() if n in wanted) + "\n" + own


def _definitions(lib: str) -> dict[str, str]:
    """lib.lua's top-level definitions by name, each with the comment lines just above it, in
    file order. Every top-level statement of lib.lua is a `local` definition."""
    blocks: dict[str, str] = {}
    current: str | None = None
    pending: list[str] = []  # comments and blank lines at the top level, not yet placed
    for line in lib.splitlines(keepends=True):
        definition = _DEFINITION.match(line)
        if definition:
            current = definition.group(1)
            if current in blocks:
                raise ValueError(f"lib.lua defines {current} twice")
            blocks[current] = "".join(pending) + line
            pending = []
        elif line.startswith("--") or not line.strip():
            pending.append(line)
        elif current is None:
            raise ValueError(f"lib.lua: a statement before any definition: {line.strip()}")
        else:
            blocks[current] += "".join(pending) + line
            pending = []
    return blocks


class Script:
    """One queue script, called as a bare EVALSHA through `execute_command`: redis-py's script
    object reaches it through `evalsha` and its argument checks, ~20 us more per call on a path
    taken once per enqueue and once per reserve. Reloaded once on NOSCRIPT (a Redis restarted or
    flushed since it was loaded). In a pipeline, redis-py's object, which the pipeline loads
    before it runs."""

    def __init__(self, redis: Redis, source: str) -> None:
        self._redis = redis
        # redis-py leaves execute_command untyped; what comes back is the script's own reply.
        self._execute: Callable[..., Awaitable[Any]] = redis.execute_command
        self._script = redis.register_script(source)

    async def __call__(
        self,
        keys: Sequence[KeyT],
        args: Sequence[EncodableT],
        *,
        client: Pipeline | None = None,
    ) -> Any:
        if client is not None:
            return await self._script(keys, args, client=client)
        try:
            return await self._execute("EVALSHA", self._script.sha, len(keys), *keys, *args)
        except NoScriptError:
            self._script.sha = await self._redis.script_load(self._script.script)
            return await self._execute("EVALSHA", self._script.sha, len(keys), *keys, *args)


class QueueScripts:
    """Registered once per Redis client; calls go out as EVALSHA and reload on NOSCRIPT."""

    def __init__(self, redis: Redis) -> None:
        self.enqueue = Script(redis, script_source("enqueue"))
        self.reserve = Script(redis, script_source("reserve"))
        self.complete = Script(redis, script_source("complete"))
        self.fail = Script(redis, script_source("fail"))
        self.defer = Script(redis, script_source("defer"))
        self.extend = Script(redis, script_source("extend"))
        self.group = Script(redis, script_source("group"))
        self.terminal = Script(redis, script_source("terminal"))


def budget_script(redis: Redis) -> AsyncScript:
    return redis.register_script(script_source("budget"))
