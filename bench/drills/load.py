"""Load: a webhook storm and read traffic while a large full sync runs, then 200 shops installing.

    python -m drills.load [--profile short|full] [--seconds N] [--rate N] [--big-products N]

(`make test-load`: the short profile, under 10 minutes.) 50 shops with their first syncs done, one
large shop whose full sync runs through the storm (100,000 products in the full profile, 10,000 in
the short one), Locust (drills/storm.py, its own process) delivering >= 10,000 webhooks a minute
with 10% duplicates, 5% forged or unknown shops and bursts of one shop, readers on the read API
meanwhile; then 200 shops install through OAuth at once and their first syncs run. Checks: every
accepted delivery is in the inbox once, applied (each storm product holds its newest accepted
payload), nothing forged accepted, the queue invariant, no cross-shop row, no secret in a log, and
parity of the large shop's catalog. Budget use comes from the emulator's own accounting of each
shop's bucket (points kept, the busiest shop's share of its restore rate, the lowest level any
bucket reached since the start, THROTTLED answers). Last line:
`accepted_per_s=... p99_ms=... lost=0 duplicated=0 forged_accepted=0`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from typing import Any
from uuid import UUID

import psycopg
from redis.asyncio import Redis

from drills.checks import Outcome, check_isolation, check_logs, check_queues, verify
from drills.stack import (
    DATA,
    ROOT,
    DrillFailed,
    Stack,
    StackConfig,
    eventually,
    open_stack,
    say,
)
from neanelu.config import load_settings
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import BULK, WEBHOOK, default_queues
from neanelu.shops.service import issue_api_key

STORM_BASE = 9_100_000_000_000
PROFILES = {
    "short": {"seconds": 90, "rate": 200, "big": 10_000, "installs": 200},
    "full": {"seconds": 300, "rate": 250, "big": 100_000, "installs": 200},
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def first_syncs_done(stack: Stack, timeout: float) -> None:
    async def done() -> bool:
        rows = await stack.query(
            "SELECT count(*) FROM shops s WHERE NOT EXISTS (SELECT 1 FROM sync_runs r"
            " WHERE r.shop_id = s.id AND r.status = 'completed')"
        )
        return int(rows[0][0]) == 0

    await eventually(done, "every shop's first sync", timeout, every=2)


async def sample_queues(stack: Stack, stop: asyncio.Event, seen: dict[str, list[float]]) -> None:
    redis = Redis.from_url(stack.redis.url)
    client = QueueClient(redis, default_queues(load_settings()))
    try:
        while not stop.is_set():
            for name in (WEBHOOK, BULK):
                audit = await client.queue(name).audit()
                seen.setdefault(name, []).append(audit.unfinished)
            await asyncio.sleep(1)
    finally:
        await redis.aclose()


async def budget_snapshot(stack: Stack) -> dict[str, dict[str, Any]]:
    """Each shop's GraphQL bucket as the emulator accounts it (neanelu's app is the only client)."""
    return {shop["name"]: shop for shop in await stack.control("GET", "/shops")}


def budget_use(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]], seconds: float
) -> str:
    """What a phase took of Shopify's budget: points kept, the busiest shop's share of what its
    bucket restores in that time, the lowest any bucket fell to, and calls refused (THROTTLED)."""
    points = refused = 0.0
    busiest = 0.0
    lowest = 1.0
    for name, shop in after.items():
        for app, usage in shop["usage"].items():
            was = before.get(name, {}).get("usage", {}).get(app, {})
            spent = usage["points_spent"] - was.get("points_spent", 0.0)
            points += spent
            refused += usage["refused"] - was.get("refused", 0)
            busiest = max(busiest, spent / (shop["restore_rate"] * seconds))
            lowest = min(lowest, usage["lowest_available"] / shop["bucket_size"])
    return (
        f"{points:.0f}pts/busiest={100 * busiest:.1f}%ofrestore/lowest={100 * lowest:.0f}%"
        f"/throttled={refused:.0f}"
    )


async def run(profile: dict[str, Any], seed: int) -> Outcome:
    out = Outcome()
    stack = await open_stack(
        StackConfig(
            name="load",
            shops=50,
            products=20,
            workers=2,
            concurrency=8,
            seed=seed,
            env={"LOG_LEVEL": "WARNING", "DB_POOL_MAX": "20"},
        ),
        DATA / "runs" / "load",
    )
    try:
        big = (await stack.add_shops(1, profile["big"]))[0]
        small = [s for s in stack.shops if s is not big]
        out.figures["install_50_s"] = round(await stack.install_all(small), 1)
        await first_syncs_done(stack, 600)
        say("50 shops installed and synced; installing the large shop")
        await stack.install_all([big])

        async def big_running() -> bool:
            rows = await stack.query(
                "SELECT count(*) FROM sync_runs WHERE shop_id = %s AND status = 'running'",
                (big.id,),
            )
            return bool(rows[0][0])

        await eventually(big_running, "the large shop's sync to run", 300)
        readers: list[dict[str, Any]] = []
        async with await psycopg.AsyncConnection.connect(stack.super_url) as conn:
            for shop in small[:5]:
                key = await issue_api_key(conn, UUID(shop.id))
                readers.append({"key": key, "sample": [8_000_000_000_000 + i for i in range(20)]})
            await conn.commit()
        plan = {
            "api_url": stack.api_url,
            "secret": stack.secret,
            "seed": seed,
            "seconds": profile["seconds"],
            "rate_per_s": profile["rate"],
            "users": 50,
            "reader_users": 5,
            "shops": [
                {
                    "name": s.name,
                    "domain": s.domain,
                    "products": [STORM_BASE + i * 100 + j for j in range(20)],
                }
                for i, s in enumerate(small)
            ],
            "readers": readers,
        }
        plan_path = stack.run_dir / "storm-plan.json"
        result_path = stack.run_dir / "storm-result.json"
        plan_path.write_text(json.dumps(plan))
        stop = asyncio.Event()
        depth: dict[str, list[float]] = {}
        sampler = asyncio.create_task(sample_queues(stack, stop, depth))
        budget_before, storm_started = await budget_snapshot(stack), time.monotonic()
        say(f"storm: {profile['rate']}/s for {profile['seconds']} s over 50 shops")
        storm = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "drills.storm",
            str(plan_path),
            str(result_path),
            cwd=ROOT / "bench",
            stdout=(stack.run_dir / "storm.log").open("ab"),
            stderr=subprocess.STDOUT,
        )
        await storm.wait()
        stop.set()
        await sampler
        out.figures["storm_budget"] = budget_use(
            budget_before, await budget_snapshot(stack), time.monotonic() - storm_started
        )
        result = json.loads(result_path.read_text())
        secrets_extra = {f"api key {i}": r["key"] for i, r in enumerate(readers)}
        await storm_checks(stack, result, out)
        out.figures["webhook_depth_max"] = max(depth.get(WEBHOOK, [0]))
        out.figures["bulk_depth_max"] = max(depth.get(BULK, [0]))
        for name in ("read_page", "read_one", "search"):
            r = result[name]
            out.figures[f"{name}"] = (
                f"{r['count']}req/{r['rps']:.0f}rps/p50={r['p50_ms']:.0f}/p95={r['p95_ms']:.0f}"
                f"/p99={r['p99_ms']:.0f}ms/fail={r['failures']}"
            )
        await install_wave(stack, profile["installs"], out)
        await first_syncs_done(stack, 900)
        compared, sampled, differences, _ = verify(stack, big.domain, min(profile["big"], 2000))
        out.figures["big_shop_parity"] = f"{compared}/{sampled} diff={differences}"
        out.check(differences == 0 and compared == sampled > 0, "large shop parity differs")
        await check_queues(stack, out)
        await check_isolation(stack, out)
        await check_logs(stack, out, secrets_extra)
    except DrillFailed as exc:
        # Red, so the database stays for a look (it is dropped only when green).
        out.check(False, str(exc))
    finally:
        await stack.close()
        if out.green:
            stack.drop_database()
    return out


async def storm_checks(stack: Stack, result: dict[str, Any], out: Outcome) -> None:
    accepted = result["accepted"]
    ids = {a[1] for a in accepted}
    shops = {s.name: s.id for s in stack.shops}

    async def applied() -> bool:
        rows = await stack.query("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL")
        return int(rows[0][0]) == 0

    try:
        await eventually(applied, "every storm delivery to be applied", 600, every=1)
    except DrillFailed as exc:
        # A backlog still applying is a red check, not the end of the run: the storm's figures
        # (lost counts rows recorded, applied or not) are what tells a slow run from a lossy one.
        out.check(False, str(exc))
    rows = await stack.query(
        "SELECT webhook_id, count(*), extract(epoch FROM max(processed_at - received_at))"
        " FROM webhook_inbox WHERE topic = 'products/update' GROUP BY webhook_id"
    )
    inbox = {r[0]: (int(r[1]), float(r[2] or 0)) for r in rows}
    lost = len(ids - inbox.keys())
    duplicated = sum(1 for w in ids if inbox.get(w, (0, 0))[0] > 1)
    lags = [inbox[w][1] for w in ids if w in inbox]
    # Each storm product holds its newest accepted payload (newer-wins applied exactly once).
    newest: dict[tuple[str, int], tuple[str, str]] = {}
    for shop, _wid, product, at, title in accepted:
        key = (shop, product)
        if key not in newest or at > newest[key][0]:
            newest[key] = (at, title)
    stored = {
        (str(r[0]), int(r[1])): str(r[2])
        for r in await stack.query(
            "SELECT shop_id, shopify_id, title FROM products WHERE shopify_id >= %s",
            (STORM_BASE,),
        )
    }
    # A delivery still unanswered when the storm stopped may have been accepted: a product
    # holding one of those newer payloads holds its newest too.
    later: dict[tuple[str, int], set[str]] = {}
    for shop, _wid, product, at, title in result["unanswered"]:
        key = (shop, product)
        if key not in newest or at > newest[key][0]:
            later.setdefault(key, set()).add(title)
    wrong = sum(
        1
        for (shop, product), (_, title) in newest.items()
        if stored.get((shops[shop], product)) not in {title, *later.get((shop, product), ())}
    )
    web = result["webhook"]
    seconds = result["seconds"]
    accepted_per_s = len(accepted) / seconds
    out.figures.update(
        {
            "storm_s": round(seconds),
            "sent": result["sent"],
            "duplicates_sent": result["duplicates_sent"],
            "forged_sent": result["forged_sent"],
            "non_200": result["errors"],
            "unanswered_at_stop": len(result["unanswered"]),
            "p50_ms": round(web["p50_ms"]),
            "p95_ms": round(web["p95_ms"]),
            "apply_lag_p99_s": round(percentile(lags, 0.99), 2),
            "rows_not_newest": wrong,
        }
    )
    out.check(lost == 0, f"{lost} accepted deliveries lost")
    out.check(duplicated == 0, f"{duplicated} deliveries recorded twice")
    out.check(result["forged_accepted"] == 0, f"{result['forged_accepted']} forged accepted")
    out.check(result["errors"] == 0, f"{result['errors']} genuine deliveries not answered 200")
    out.check(
        result["duplicates_accepted"] == result["duplicates_sent"],
        "a repeated delivery was not answered 200",
    )
    out.check(wrong == 0, f"{wrong} storm products do not hold their newest payload")
    out.figures["storm_line"] = (
        f"accepted_per_s={accepted_per_s:.0f} p99_ms={web['p99_ms']:.0f} lost={lost} "
        f"duplicated={duplicated} forged_accepted={result['forged_accepted']}"
    )


async def install_wave(stack: Stack, count: int, out: Outcome) -> None:
    shops = await stack.add_shops(count, 5)
    budget_before, started = await budget_snapshot(stack), time.monotonic()
    seconds = await stack.install_all(shops, parallel=25)
    out.figures["installs"] = count
    out.figures["installs_s"] = round(seconds, 1)
    out.check(seconds < 60, f"{count} installs took {seconds:.0f} s (over a minute)")
    await first_syncs_done(stack, 900)
    out.figures["install_budget"] = budget_use(
        budget_before, await budget_snapshot(stack), time.monotonic() - started
    )
    rows = await stack.query(
        "SELECT extract(epoch FROM r.finished_at - s.created_at) FROM shops s"
        " JOIN sync_runs r ON r.shop_id = s.id AND r.status = 'completed'"
        " WHERE s.domain = ANY(%s)",
        ([s.domain for s in shops],),
    )
    waits = [float(r[0]) for r in rows]
    out.figures["first_sync_p50_s"] = round(statistics.median(waits), 1)
    out.figures["first_sync_p99_s"] = round(percentile(waits, 0.99), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--big-products", type=int)
    parser.add_argument("--installs", type=int)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    profile = dict(PROFILES[args.profile])
    for key, value in (
        ("seconds", args.seconds),
        ("rate", args.rate),
        ("big", args.big_products),
        ("installs", args.installs),
    ):
        if value is not None:
            profile[key] = value
    started = time.monotonic()
    out = asyncio.run(run(profile, args.seed))
    for failure in out.failures:
        print(f"  load: {failure}")
    line = out.figures.pop(
        "storm_line", "accepted_per_s=0 p99_ms=0 lost=? duplicated=? forged_accepted=?"
    )
    for key, value in out.figures.items():
        print(f"  {key}: {value}")
    print(f"  green: {'yes' if out.green else 'no'} in {time.monotonic() - started:.0f} s")
    print(line, flush=True)
    sys.exit(0 if out.green else 1)


if __name__ == "__main__":
    main()
