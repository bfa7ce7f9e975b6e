"""Soak: steady webhooks and periodic syncs for a long while; memory, descriptors and lag watched.

    python -m drills.soak [--minutes 30] [--rate 10] [--sync-every-s 120] [--warmup-s 120]
                          [--token-ttl-s 1200]

(`make soak`; MINUTES=... for another length.) A stack of 5 shops takes catalog changes from the
emulator (real webhooks) at a steady rate and a full sync of one shop every `sync-every-s`. Every
10 s it samples the RSS (with children) and open descriptors of the API and of each worker, and the
apply lag of the webhooks that arrived since (inbox processed_at - received_at). Growth is measured
from the end of the warm-up to the end. Then the common checks. Last line:
`rss_growth_pct=... fd_growth=... lag_p99_s=...`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time

from drills.checks import Outcome, common_checks
from drills.stack import DATA, Proc, Stack, StackConfig, open_stack, say
from drills.traffic import Traffic, request_sync


def _sample(procs: list[Proc]) -> tuple[int, int]:
    rss = fds = 0
    for proc in procs:
        if proc.alive:
            rss += proc.rss_kib()
            fds += proc.fds()
    return rss, fds


def _lag_ends(timed: list[tuple[float, float]]) -> tuple[float, float]:
    """Median apply lag in the first and in the last fifth of the measured time."""
    if not timed:
        return 0.0, 0.0
    t0, t1 = timed[0][0], timed[-1][0]
    fifth = (t1 - t0) / 5
    first = [lag for at, lag in timed if at <= t0 + fifth] or [timed[0][1]]
    last = [lag for at, lag in timed if at >= t1 - fifth] or [timed[-1][1]]
    return statistics.median(first), statistics.median(last)


async def run(
    minutes: float,
    rate: float,
    sync_every_s: float,
    warmup_s: float,
    seed: int,
    token_ttl_s: float,
) -> Outcome:
    stack: Stack = await open_stack(
        StackConfig(
            name="soak",
            shops=5,
            products=1000,
            workers=2,
            seed=seed,
            emulator_args=["--access-token-ttl", str(token_ttl_s)],
        ),
        DATA / "runs" / "soak",
    )
    out = Outcome()
    rng = random.Random(f"soak:{seed}")
    samples: list[tuple[float, int, int]] = []
    # (seconds since the start, apply lag) after the warm-up; the flatness check compares the
    # first and last fifth.
    timed_lags: list[tuple[float, float]] = []
    try:
        await stack.install_all()
        traffic = Traffic(stack, random.Random(f"soak-traffic:{seed}"), per_s=rate)
        traffic.start()
        started = time.monotonic()
        ends = started + minutes * 60
        next_sync = started + sync_every_s
        last_id = 0
        syncs = 0
        while time.monotonic() < ends:
            await asyncio.sleep(10)
            procs = [stack.api, *stack.workers]
            rss, fds = _sample(procs)
            samples.append((time.monotonic() - started, rss, fds))
            rows = await stack.query(
                "SELECT id, extract(epoch FROM processed_at - received_at) FROM webhook_inbox"
                " WHERE id > %s AND processed_at IS NOT NULL ORDER BY id",
                (last_id,),
            )
            if rows:
                last_id = int(rows[-1][0])
                if time.monotonic() - started > warmup_s:
                    at = time.monotonic() - started
                    timed_lags.extend((at, float(r[1])) for r in rows)
            if time.monotonic() > next_sync:
                await request_sync(stack, rng.choice(stack.shops), reason="soak: periodic")
                syncs += 1
                next_sync += sync_every_s
        await traffic.stop()
        out = await common_checks(stack)
        after_warmup = [s for s in samples if s[0] >= warmup_s] or samples
        # Medians of the first and last minute after warm-up: one sample caught mid-merge (a
        # sync's child process) is not growth.
        head = [s for s in after_warmup if s[0] < after_warmup[0][0] + 60]
        tail = [s for s in after_warmup if s[0] > after_warmup[-1][0] - 60]
        rss0 = statistics.median(s[1] for s in head)
        rss1 = statistics.median(s[1] for s in tail)
        fd0 = statistics.median(s[2] for s in head)
        fd1 = statistics.median(s[2] for s in tail)
        growth = 100.0 * (rss1 - rss0) / rss0
        lags = [lag for _, lag in timed_lags]
        lag_p99 = sorted(lags)[int(len(lags) * 0.99)] if lags else 0.0
        lag_first, lag_last = _lag_ends(timed_lags)
        out.figures.update(
            {
                "minutes": minutes,
                "changes": traffic.changes,
                "syncs": syncs,
                "samples": len(samples),
                "rss_mib_start": round(rss0 / 1024),
                "rss_mib_end": round(rss1 / 1024),
                "fds_start": fd0,
                "fds_end": fd1,
                "lag_p50_s": round(statistics.median(lags), 3) if lags else 0,
                # Flat lag: the median of the last fifth of the run is not far above the first's.
                "lag_p50_first_fifth_s": round(lag_first, 3),
                "lag_p50_last_fifth_s": round(lag_last, 3),
            }
        )
        out.check(growth < 10, f"RSS grew {growth:.1f}% after warm-up")
        out.check(fd1 - fd0 <= 5, f"descriptors grew by {fd1 - fd0}")
        out.figures["line"] = (
            f"rss_growth_pct={growth:.1f} fd_growth={fd1 - fd0:.0f} lag_p99_s={lag_p99:.2f}"
        )
        with (stack.run_dir / "samples.tsv").open("w") as f:
            f.write("t_s\trss_kib\tfds\n")
            for t, rss, fds in samples:
                f.write(f"{t:.0f}\t{rss}\t{fds}\n")
    finally:
        await stack.close()
        if out.green:
            stack.drop_database()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=10.0, help="catalog changes per second")
    parser.add_argument("--sync-every-s", type=float, default=120.0)
    parser.add_argument("--warmup-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--token-ttl-s",
        type=float,
        default=1200.0,
        help="life of the shops' access tokens: short enough that the sweep refreshes them "
        "during the soak and the checks run on refreshed tokens",
    )
    args = parser.parse_args()
    out = asyncio.run(
        run(
            args.minutes,
            args.rate,
            args.sync_every_s,
            args.warmup_s,
            args.seed,
            args.token_ttl_s,
        )
    )
    line = out.figures.pop("line", "rss_growth_pct=? fd_growth=? lag_p99_s=?")
    for failure in out.failures:
        print(f"  soak: {failure}")
    for key, value in out.figures.items():
        if not key.startswith("queue_"):
            print(f"  {key}: {value}")
    print(f"  green: {'yes' if out.green else 'no'}")
    say("soak done")
    print(line, flush=True)
    sys.exit(0 if out.green else 1)


if __name__ == "__main__":
    main()
