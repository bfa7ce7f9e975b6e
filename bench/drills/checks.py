"""The checks every drill ends with, once the stack has drained.

1. Every shop's tables equal the emulator's catalog: counts, and a parity comparison of 100% of
   the products field by field (`neanelu sync verify`, run as an operator would).
2. Every webhook the API accepted with 200 is in the inbox once and applied (processed); no inbox
   row without a delivery behind it.
3. The queue invariant on every queue: enqueued = completed + failed + dead + unfinished, and no
   lease past its deadline.
4. No cross-shop row: every variant's product, every level's item, are the same shop's.
5. No secret in any log: the app secret, the encryption key, every shop's access and refresh
   token, in every process' log and the servers' logs.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from drills.stack import ROOT, DrillFailed, Stack, eventually, say
from neanelu.config import load_settings
from neanelu.queue.client import QueueClient
from neanelu.queue.settings import QUEUE_NAMES, default_queues
from neanelu.vault import Sealed, TokenVault

PARITY = re.compile(r"parity: (\d+)/(\d+) products compared, (\d+) differences")


@dataclass
class Outcome:
    """What a drill's checks found; `failures` empty means green."""

    figures: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        if not ok:
            self.failures.append(what)
            say(f"CHECK FAILED: {what}")

    @property
    def green(self) -> bool:
        return not self.failures


async def deliveries(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    return {
        s.name: await stack.control("GET", f"/shops/{s.name}/webhooks/deliveries")
        for s in stack.shops
    }


async def drain(stack: Stack, timeout: float = 600) -> None:
    """Wait until Shopify has nothing left to deliver, every delivery is applied, no sync is
    unfinished and the queues hold only their periodic ticks."""

    async def webhooks_settled() -> bool:
        log = await deliveries(stack)
        for entries in log.values():
            ok = {e["webhook_id"] for e in entries if e["ok"]}
            if any(e["webhook_id"] not in ok for e in entries):
                return False
        return True

    async def inbox_applied() -> bool:
        rows = await stack.query("SELECT count(*) FROM webhook_inbox WHERE processed_at IS NULL")
        return int(rows[0][0]) == 0

    async def syncs_done() -> bool:
        rows = await stack.query(
            "SELECT count(*) FROM sync_runs WHERE status IN ('queued', 'running')"
        )
        return int(rows[0][0]) == 0

    async def queues_idle() -> bool:
        redis = Redis.from_url(stack.redis.url)
        try:
            client = QueueClient(redis, default_queues(load_settings()))
            for name in QUEUE_NAMES:
                counts = await client.queue(name).counts()
                if counts.active or counts.ready_groups:
                    return False
            return True
        finally:
            await redis.aclose()

    async def settled() -> bool:
        return (
            await webhooks_settled()
            and await inbox_applied()
            and await syncs_done()
            and await queues_idle()
        )

    await eventually(settled, "the stack to drain", timeout, every=1.0)
    # Quiet for a moment (a delivery in flight is not in the log yet), then settled still.
    await asyncio.sleep(3)
    await eventually(settled, "the stack to drain (second look)", timeout, every=1.0)


async def check_catalog(stack: Stack, out: Outcome) -> None:
    truths = {}
    for shop in stack.shops:
        truth = await stack.control("GET", f"/shops/{shop.name}/counts")
        truths[shop.name] = truth
        rows = await stack.query(
            "SELECT (SELECT count(*) FROM products WHERE shop_id = %s AND deleted_at IS NULL),"
            " (SELECT count(*) FROM variants WHERE shop_id = %s AND deleted_at IS NULL),"
            " (SELECT count(*) FROM inventory_levels WHERE shop_id = %s)",
            (shop.id, shop.id, shop.id),
        )
        products, variants, levels = rows[0]
        out.check(
            (products, variants, levels)
            == (truth["products"], truth["variants"], truth["inventory_levels"]),
            f"{shop.name}: stored products/variants/levels {products}/{variants}/{levels} != "
            f"Shopify's {truth['products']}/{truth['variants']}/{truth['inventory_levels']}",
        )
        status = await stack.query(
            "SELECT status FROM sync_runs WHERE shop_id = %s AND kind = 'full'"
            " ORDER BY created_at DESC LIMIT 1",
            (shop.id,),
        )
        out.check(
            bool(status) and status[0][0] == "completed",
            f"{shop.name}: last full sync is {status[0][0] if status else 'missing'}",
        )
    # Every shop's parity at once: one product per query, so the checks wait on Shopify's
    # answers far more than on a core.
    results = await asyncio.gather(
        *(verify_async(stack, s.domain, truths[s.name]["products"]) for s in stack.shops)
    )
    for shop, (compared, sampled, differences, text) in zip(stack.shops, results, strict=True):
        total = truths[shop.name]["products"]
        out.check(
            compared == sampled == total and differences == 0,
            f"{shop.name}: parity {compared}/{sampled} of {total} with "
            f"{differences} differences: {text[-500:]}",
        )
        out.figures["parity_products"] = out.figures.get("parity_products", 0) + compared


def _verify_argv(domain: str, products: int) -> list[str]:
    return [
        str(ROOT / ".venv/bin/neanelu"),
        "sync",
        "verify",
        "--shop",
        domain,
        "--sample",
        str(max(products, 1)),
    ]


def _parity(stack: Stack, domain: str, code: int, text: str) -> tuple[int, int, int, str]:
    with (stack.run_dir / "verify.log").open("a") as log:
        log.write(f"--- {domain} exit {code}\n{text}")
    found = PARITY.search(text)
    if not found:
        return 0, 0, -1, text
    return int(found[1]), int(found[2]), int(found[3]), text


async def verify_async(stack: Stack, domain: str, products: int) -> tuple[int, int, int, str]:
    """`neanelu sync verify` over every product of the shop, as an operator runs it."""
    proc = await asyncio.create_subprocess_exec(
        *_verify_argv(domain, products),
        env={**stack.env, "LOG_LEVEL": "WARNING", "COLUMNS": "200"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
    )
    data, _ = await proc.communicate()
    return _parity(stack, domain, proc.returncode or 0, data.decode(errors="replace"))


def verify(stack: Stack, domain: str, products: int) -> tuple[int, int, int, str]:
    done = subprocess.run(
        _verify_argv(domain, products),
        env={**stack.env, "LOG_LEVEL": "WARNING", "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=ROOT,
    )
    return _parity(stack, domain, done.returncode, done.stdout + done.stderr)


async def check_webhooks(stack: Stack, out: Outcome) -> None:
    log = await deliveries(stack)
    sent = accepted_total = 0
    for shop in stack.shops:
        entries = log[shop.name]
        accepted = {e["webhook_id"] for e in entries if e["status"] == 200}
        attempted = {e["webhook_id"] for e in entries}
        rows = await stack.query(
            "SELECT webhook_id, processed_at IS NOT NULL FROM webhook_inbox WHERE shop_id = %s",
            (shop.id,),
        )
        inbox: defaultdict[str, int] = defaultdict(int)
        for webhook_id, _ in rows:
            inbox[webhook_id] += 1
        unprocessed = sum(1 for _, done in rows if not done)
        missing = accepted - inbox.keys()
        extra = inbox.keys() - attempted
        twice = [w for w, n in inbox.items() if n > 1]
        sent += len(attempted)
        accepted_total += len(accepted)
        out.check(not missing, f"{shop.name}: {len(missing)} accepted webhooks not in the inbox")
        out.check(not extra, f"{shop.name}: {len(extra)} inbox rows Shopify never sent")
        out.check(not twice, f"{shop.name}: {len(twice)} webhooks recorded twice")
        out.check(unprocessed == 0, f"{shop.name}: {unprocessed} inbox rows not applied")
    out.figures["webhooks_sent"] = sent
    out.figures["webhooks_accepted"] = accepted_total


async def check_queues(stack: Stack, out: Outcome, grace_ms: int = 2000) -> None:
    redis = Redis.from_url(stack.redis.url)
    try:
        client = QueueClient(redis, default_queues(load_settings()))
        for name in QUEUE_NAMES:
            audit = await client.queue(name).audit(grace_ms=grace_ms)
            out.figures[f"queue_{name}"] = audit.describe()
            out.check(audit.holds, f"queue {name}: invariant broken: {audit.describe()}")
    finally:
        await redis.aclose()


async def check_isolation(stack: Stack, out: Outcome) -> None:
    known = [s.id for s in stack.shops]
    for table in ("products", "variants", "inventory_levels", "webhook_inbox", "sync_runs"):
        rows = await stack.query(
            f"SELECT count(*) FROM {table} WHERE NOT (shop_id = ANY(%s::uuid[]))",
            (known,),
        )
        out.check(rows[0][0] == 0, f"{table}: {rows[0][0]} rows of no installed shop")
    rows = await stack.query(
        "SELECT count(*) FROM variants v WHERE NOT EXISTS (SELECT 1 FROM products p"
        " WHERE p.shop_id = v.shop_id AND p.shopify_id = v.product_shopify_id)"
    )
    out.check(rows[0][0] == 0, f"{rows[0][0]} variants whose product is not their shop's")
    rows = await stack.query(
        "SELECT count(*) FROM inventory_levels l WHERE NOT EXISTS (SELECT 1 FROM variants v"
        " WHERE v.shop_id = l.shop_id AND v.inventory_item_id = l.inventory_item_id)"
    )
    out.check(rows[0][0] == 0, f"{rows[0][0]} inventory levels whose item is not their shop's")


async def secrets_of(stack: Stack) -> dict[str, str]:
    """Every secret the installation holds: the app's, the key, each shop's tokens in clear."""
    settings = load_settings(**{k: v for k, v in stack.env.items() if k.isupper()})
    vault = TokenVault.from_settings(settings)
    found = {"app secret": stack.secret, "encryption key": stack.encryption_key}
    rows = await stack.query(
        "SELECT id, domain, access_token_ct, access_token_key_id, refresh_token_ct,"
        " refresh_token_key_id FROM shops"
    )
    for shop_id, domain, access, access_key, refresh, refresh_key in rows:
        for kind, ct, key_id in (("access", access, access_key), ("refresh", refresh, refresh_key)):
            if ct is not None:
                plain = vault.open(Sealed(bytes(ct), key_id), shop_id=shop_id, kind=kind)
                found[f"{domain} {kind} token"] = plain.get_secret_value()
    return found


async def check_logs(stack: Stack, out: Outcome, extra: dict[str, str] | None = None) -> None:
    leaks = {**(await secrets_of(stack)), **(extra or {})}
    logs = [*sorted(stack.run_dir.glob("*.log")), stack.pg.log_path, stack.redis.log_path]
    scanned = 0
    for path in logs:
        if not path.exists():
            continue
        data = path.read_bytes()
        scanned += len(data)
        for what, value in leaks.items():
            out.check(value.encode() not in data, f"{what} found in {path.name}")
    out.figures["log_bytes_scanned"] = scanned
    out.figures["secrets_checked"] = len(leaks)


async def common_checks(stack: Stack, *, drain_timeout: float = 600) -> Outcome:
    out = Outcome()
    started = time.monotonic()
    try:
        await drain(stack, drain_timeout)
    except DrillFailed as exc:
        out.check(False, str(exc))
    out.figures["drain_s"] = round(time.monotonic() - started, 1)
    await check_queues(stack, out)
    await check_webhooks(stack, out)
    await check_isolation(stack, out)
    await check_catalog(stack, out)
    await check_logs(stack, out)
    return out


def logs_of(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob("*.log"))
