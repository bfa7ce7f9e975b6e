"""Failure drills: a real installation, a fault a production one meets, then the common checks.

    python -m drills.chaos [--drill NAME ...] [--seed 1] [--kill-duration-s 300] [--keep]

(`make chaos`, `make chaos DRILL=name`; run from the repository with `PYTHONPATH=bench`.) Each
drill starts a fresh stack (drills/stack.py), installs its shops through OAuth, lets their first
full syncs and a stream of catalog changes (webhooks) run, does its damage, and ends with
drills/checks.py. The seed fixes every random choice (which worker dies, which product changes,
which calls fail). A line per drill: `drill=NAME green=yes|no key=value ...`; the exit code is
non-zero when any drill was not green. Logs stay in `.data/drills/runs/NAME/`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from drills.checks import Outcome, common_checks
from drills.stack import DATA, DrillFailed, Stack, StackConfig, eventually, open_stack, say
from drills.traffic import Traffic, request_sync

RUNS = DATA / "runs"


@dataclass
class Params:
    seed: int = 1
    kill_every_s: float = 5.0
    kill_duration_s: float = 300.0
    fault_ratio: float = 0.2
    fault_duration_s: float = 60.0


Drill = Callable[[Stack, random.Random, Traffic, Params, dict[str, Any]], Awaitable[None]]


@dataclass
class DrillSpec:
    run: Drill
    config: dict[str, Any] = field(default_factory=dict)
    doc: str = ""


async def _first_sync_started(stack: Stack, timeout: float = 120) -> None:
    async def started() -> bool:
        rows = await stack.query(
            "SELECT count(*) FROM sync_runs WHERE status = 'running'"
            " AND (bytes > 0 OR counts <> '{}'::jsonb)"
        )
        return bool(rows[0][0])

    await eventually(started, "a full sync to be under way", timeout, every=0.1)


async def _merging(stack: Stack, timeout: float = 180) -> bool:
    """True once a merge statement is seen running; False when none was caught in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await stack.query(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND state = 'active'"
            " AND query ~* '(insert into|update) +(products|variants|inventory_levels)\\M'",
            (stack.database,),
        )
        if rows[0][0]:
            return True
        await asyncio.sleep(0.02)
    return False


# -- the drills ----------------------------------------------------------------------------------


async def redis_restart(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """Redis stopped and started again (AOF on) twice while the first syncs and webhooks run."""
    await _first_sync_started(stack)
    for n in range(2):
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        started = time.monotonic()
        stack.restart_redis()
        fig[f"redis_restart_{n}_s"] = round(time.monotonic() - started, 2)
        say(f"redis restarted ({fig[f'redis_restart_{n}_s']} s)")


async def redis_lost(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """Redis replaced by an empty one mid-sync: every queued job, lease and counter gone. The
    outbox and the sync runs in PostgreSQL must bring back what the queue needs."""
    await _first_sync_started(stack)
    await asyncio.sleep(rng.uniform(0.5, 2.0))
    stack.restart_redis(lose_data=True)
    say("redis lost and replaced by an empty one")


async def _pg_restart(stack: Stack, mode: str, fig: dict[str, Any]) -> None:
    await _first_sync_started(stack)
    fig["caught_merge"] = await _merging(stack)
    started = time.monotonic()
    stack.restart_postgres(mode)
    fig["pg_restart_s"] = round(time.monotonic() - started, 2)
    say(f"postgres restarted ({mode}, merge caught: {fig['caught_merge']})")


async def pg_restart_fast(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """PostgreSQL restarted with a fast shutdown (open transactions rolled back) mid-merge."""
    await _pg_restart(stack, "fast", fig)


async def pg_restart_immediate(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """PostgreSQL stopped without a checkpoint (crash recovery on the way up) mid-merge."""
    await _pg_restart(stack, "immediate", fig)


async def worker_kill(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """A worker SIGKILLed every few seconds (a new one started in its place) while syncs and
    webhooks flow; a full sync of a random shop is asked for every 30 s."""
    ends = time.monotonic() + p.kill_duration_s
    kills = 0
    next_sync = time.monotonic() + 30
    while time.monotonic() < ends:
        await asyncio.sleep(p.kill_every_s)
        alive = [w for w in stack.workers if w.alive]
        if alive:
            victim = rng.choice(alive)
            victim.kill()
            assert victim.popen is not None  # alive: it has a process
            victim.popen.wait()
            kills += 1
        stack.add_worker()
        if time.monotonic() > next_sync:
            await request_sync(stack, rng.choice(stack.shops))
            next_sync += 30
    fig["kills"] = kills
    say(f"{kills} workers killed")


async def emulator_faults(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """Shopify failing a share of calls: 5xx, 429, THROTTLED, slow answers, cut downloads, URLs
    issued expired, and bulk operations that fail, time out or expire; then syncs asked again."""
    share = p.fault_ratio / 4  # the Admin API's four kinds share the ratio
    api = [
        ("http_5xx", {"status": 503}),
        ("http_429", {"retry_after": "0.5"}),
        ("throttled", {}),
        ("slow", {"delay_s": 0.5}),
    ]
    for i, shop in enumerate(stack.shops):
        for kind, params in api:
            await stack.control(
                "POST",
                f"/shops/{shop.name}/faults",
                json={
                    "kind": kind,
                    "params": params,
                    "ratio": share,
                    "seed": p.seed * 100 + i,
                    "duration_s": p.fault_duration_s,
                },
            )
        for kind, body in (
            ("reset_download", {"params": {"after_bytes": 65536}, "ratio": p.fault_ratio}),
            ("expired_url", {"count": 1}),
            (rng.choice(["bulk_failed", "bulk_timeout", "bulk_expired"]), {"count": 1}),
        ):
            await stack.control(
                "POST",
                f"/shops/{shop.name}/faults",
                json={"kind": kind, "seed": p.seed, "duration_s": p.fault_duration_s, **body},
            )
    await _first_sync_started(stack, timeout=300)
    await asyncio.sleep(p.fault_duration_s / 2)
    for shop in stack.shops:
        await request_sync(stack, shop, reason="drill: second sync under faults")
    await asyncio.sleep(p.fault_duration_s / 2)
    fired: dict[str, int] = {}
    for shop in stack.shops:
        for fault in (await stack.control("GET", f"/shops/{shop.name}/faults"))["faults"]:
            fired[fault["kind"]] = fired.get(fault["kind"], 0) + fault["fired"]
    fig["faults_fired"] = json.dumps(fired, separators=(",", ":"))
    for shop in stack.shops:
        await stack.control("DELETE", f"/shops/{shop.name}/faults")


async def _tablespace(stack: Stack, size_mb: int) -> tuple[Path | None, str]:
    """A tablespace on a tmpfs of `size_mb` for temporary tables (the sync's staging), or on a
    plain directory with `temp_file_limit` when nothing can be mounted here."""
    mount = DATA / "small-temp"
    mount.mkdir(parents=True, exist_ok=True)
    # A mount left by an earlier run that did not end green: start from a fresh one.
    await asyncio.to_thread(subprocess.run, ["umount", str(mount)], capture_output=True)
    mounting = await asyncio.to_thread(
        subprocess.run,
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mount)],
        capture_output=True,
    )
    mounted = mounting.returncode == 0
    spot = mount / "pg"
    spot.mkdir(exist_ok=True)
    owner = stack.pg.data_dir.stat()
    shutil.chown(spot, owner.st_uid, owner.st_gid)
    await stack.query("DROP TABLESPACE IF EXISTS drill_small")
    await stack.query(f"CREATE TABLESPACE drill_small LOCATION '{spot}'")
    await stack.query("GRANT CREATE ON TABLESPACE drill_small TO neanelu_app")
    await stack.query(f"ALTER DATABASE {stack.database} SET temp_tablespaces = 'drill_small'")
    if not mounted:
        await stack.query(f"ALTER DATABASE {stack.database} SET temp_file_limit = '{size_mb}MB'")
    return (mount if mounted else None), ("tmpfs" if mounted else "temp_file_limit")


def _drop_tablespace(stack: Stack) -> None:
    import psycopg

    with psycopg.connect(stack.pg.url(database="postgres"), autocommit=True) as conn:
        conn.execute("DROP TABLESPACE IF EXISTS drill_small")
    subprocess.run(["umount", str(DATA / "small-temp")], capture_output=True, check=False)


async def pg_temp_full(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """The sync's staging (temporary tables) on a tablespace too small for it: the attempt fails
    with disk full and damages nothing; once space is back the retried run completes."""
    mount_or_none, how = await _tablespace(stack, 4)
    fig["space_limit"] = how
    try:
        await stack.install_all()

        async def an_attempt_failed() -> bool:
            rows = await stack.query(
                "SELECT count(*) FROM sync_run_attempts WHERE error ~* '(space|temp_file_limit)'"
            )
            return bool(rows[0][0])

        await eventually(an_attempt_failed, "a sync attempt to fail for space", 300)
        errors = await stack.query(
            "SELECT error FROM sync_run_attempts WHERE error IS NOT NULL ORDER BY started_at"
            " LIMIT 1"
        )
        fig["first_error"] = str(errors[0][0])[:120] if errors else ""
    finally:
        if mount_or_none is not None:
            await asyncio.to_thread(
                subprocess.run, ["mount", "-o", "remount,size=512m", str(mount_or_none)], check=True
            )
        else:
            await stack.query(f"ALTER DATABASE {stack.database} RESET temp_file_limit")
    say("space freed; waiting for the syncs to finish")
    # A run whose attempts all failed for space stays failed; the operator asks again.
    await _resync_failed(stack, fig)


async def _resync_failed(stack: Stack, fig: dict[str, Any]) -> None:
    async def none_unfinished() -> bool:
        rows = await stack.query(
            "SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')"
        )
        return int(rows[0][0]) == 0

    await eventually(none_unfinished, "the runs to end", 900, every=1)
    asked = 0
    for shop in stack.shops:
        rows = await stack.query(
            "SELECT status FROM sync_runs WHERE shop_id = %s AND kind = 'full'"
            " ORDER BY created_at DESC LIMIT 1",
            (shop.id,),
        )
        if not rows or rows[0][0] != "completed":
            await request_sync(stack, shop, reason="drill: after the fault")
            asked += 1
    fig["resynced_after_failure"] = asked


async def api_restart(
    stack: Stack, rng: random.Random, traffic: Traffic, p: Params, fig: dict[str, Any]
) -> None:
    """The API stopped and started three times while webhooks keep arriving (Shopify retries
    what it could not deliver)."""
    traffic.per_s = 15
    for n in range(3):
        await asyncio.sleep(rng.uniform(2, 6))
        started = time.monotonic()
        await stack.restart_api(down_s=rng.uniform(0.5, 3))
        fig[f"api_down_{n}_s"] = round(time.monotonic() - started, 1)
        say(f"api restarted ({fig[f'api_down_{n}_s']} s without it)")


DRILLS: dict[str, DrillSpec] = {
    "redis_restart": DrillSpec(redis_restart, {"products": 1500}),
    "redis_lost": DrillSpec(redis_lost, {"products": 1500}),
    "pg_restart_fast": DrillSpec(pg_restart_fast, {"shops": 2, "products": 4000}),
    "pg_restart_immediate": DrillSpec(pg_restart_immediate, {"shops": 2, "products": 4000}),
    "worker_kill": DrillSpec(worker_kill, {"products": 800, "workers": 3, "concurrency": 2}),
    "emulator_faults": DrillSpec(emulator_faults, {"products": 800}),
    "pg_temp_full": DrillSpec(pg_temp_full, {"shops": 2, "products": 3000}),
    "api_restart": DrillSpec(api_restart, {"products": 500}),
}
# Drills that install their shops themselves (after preparing something the install needs).
INSTALLS_ITSELF = {"pg_temp_full"}


async def run_drill(name: str, params: Params, *, keep: bool = False) -> Outcome:
    spec = DRILLS[name]
    rng = random.Random(f"{name}:{params.seed}")
    config = StackConfig(name=name, seed=params.seed, **spec.config)
    say(f"drill {name} (seed {params.seed}): {(spec.run.__doc__ or '').splitlines()[0]}")
    stack = await open_stack(config, RUNS / name)
    fig: dict[str, Any] = {}
    started = time.monotonic()
    outcome = Outcome()
    traffic = Traffic(stack, random.Random(f"traffic:{name}:{params.seed}"))
    try:
        if name not in INSTALLS_ITSELF:
            fig["install_s"] = round(await stack.install_all(), 2)
        traffic.start()
        try:
            await spec.run(stack, rng, traffic, params, fig)
        finally:
            await traffic.stop()
        fig["changes"] = traffic.changes
        if name not in ("pg_temp_full",):
            await _resync_failed(stack, fig)
        outcome = await common_checks(stack)
    except DrillFailed as exc:
        outcome.check(False, str(exc))
    finally:
        fig["restarts"] = sum(p.starts - 1 for p in stack.processes)
        await stack.close()
        if outcome.green and not keep:
            stack.drop_database()
            if name == "pg_temp_full":
                _drop_tablespace(stack)
    outcome.figures = {**fig, **outcome.figures, "seconds": round(time.monotonic() - started)}
    return outcome


def summary(name: str, outcome: Outcome) -> str:
    parts = [f"drill={name}", f"green={'yes' if outcome.green else 'no'}"]
    parts += [f"{k}={v}" for k, v in outcome.figures.items() if not k.startswith("queue_")]
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drill", action="append", choices=sorted(DRILLS), default=[])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kill-every-s", type=float, default=5.0)
    parser.add_argument("--kill-duration-s", type=float, default=300.0)
    parser.add_argument("--fault-ratio", type=float, default=0.2)
    parser.add_argument("--fault-duration-s", type=float, default=60.0)
    parser.add_argument("--keep", action="store_true", help="keep each drill's database")
    args = parser.parse_args()
    params = Params(
        seed=args.seed,
        kill_every_s=args.kill_every_s,
        kill_duration_s=args.kill_duration_s,
        fault_ratio=args.fault_ratio,
        fault_duration_s=args.fault_duration_s,
    )
    names = args.drill or list(DRILLS)
    results: list[tuple[str, Outcome]] = []
    for name in names:
        outcome = asyncio.run(run_drill(name, params, keep=args.keep))
        results.append((name, outcome))
        for failure in outcome.failures:
            print(f"  {name}: {failure}", flush=True)
        for key, value in outcome.figures.items():
            if key.startswith("queue_"):
                print(f"  {name}: {key}: {value}", flush=True)
        print(summary(name, outcome), flush=True)
    green = sum(1 for _, o in results if o.green)
    print(f"drills={len(results)} green={green} red={len(results) - green} seed={args.seed}")
    sys.exit(0 if green == len(results) else 1)


if __name__ == "__main__":
    main()
