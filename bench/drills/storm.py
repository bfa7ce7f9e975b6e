"""The webhook storm and the read traffic, as Locust users (headless, in this process).

    python -m drills.storm PLAN.json RESULT.json

Run by drills/load.py in a process of its own (Locust patches the standard library for gevent,
which the asyncio harness must not see). PLAN names the API, the app secret, the shops with their
storm product ids and API keys, the rate and the duration. Deliveries are products/update for
products only the storm touches, so the final row of each is the newest payload accepted. Of all
deliveries 10% repeat an accepted one (same webhook id and body), 5% are forged (a bad HMAC) or
for a shop that does not exist; every 10 s one shop gets most of the traffic for 2 s (a burst).
RESULT holds every accepted delivery, the counts and the latency percentiles.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import FastHttpUser, User, between, constant_throughput, events, task
from locust.env import Environment

PLAN: dict[str, Any] = {}
RESULT: dict[str, Any] = {
    "accepted": [],
    "sent": 0,
    "duplicates_sent": 0,
    "duplicates_accepted": 0,
    "forged_sent": 0,
    "forged_accepted": 0,
    "errors": 0,
    "read_errors": 0,
    # Deliveries sent whose answer had not come back when the run stopped (their greenlets are
    # killed): the API may have accepted them, so they count as neither accepted nor refused.
    "pending": {},
}
_rng = random.Random(1)


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _shop_now() -> dict[str, Any]:
    shops: list[dict[str, Any]] = PLAN["shops"]
    # Bursts: for 2 s in every 10 the first shop of the cycle takes most deliveries.
    now = time.time()
    if now % 10 < 2 and _rng.random() < 0.8:
        return shops[int(now // 10) % len(shops)]
    return _rng.choice(shops)


class Storm(FastHttpUser):
    """One Shopify delivery loop; the rate is set per user from the plan."""

    wait_time = constant_throughput(1.0)

    def _post(self, name: str, domain: str, body: bytes, signature: str, webhook_id: str) -> int:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "products/update",
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-API-Version": "2026-01",
            "X-Shopify-Webhook-Id": webhook_id,
            "X-Shopify-Event-Id": webhook_id,
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }
        with self.client.post(
            # locust annotates `data` as str but sends bytes as they are (its docstring says
            # str or bytes); the body must reach the server byte for byte, as it was signed.
            "/api/webhooks",
            data=body,  # type: ignore[arg-type]
            headers=headers,
            name=name,
            catch_response=True,
        ) as response:
            status = int(response.status_code or 0)
            if name == "forged":
                # A refusal is the right answer here: not an error of the run.
                response.success()
            return status

    @task
    def deliver(self) -> None:
        roll = _rng.random()
        accepted = RESULT["accepted"]
        if roll < 0.10 and accepted:
            shop, webhook_id, _pid, _at, _title, body = _rng.choice(accepted[-500:])
            domain = next(s["domain"] for s in PLAN["shops"] if s["name"] == shop)
            status = self._post(
                "webhook-duplicate",
                domain,
                body.encode(),
                _sign(body.encode(), PLAN["secret"]),
                webhook_id,
            )
            RESULT["duplicates_sent"] += 1
            RESULT["duplicates_accepted"] += status == 200
            return
        shop = _shop_now()
        product = _rng.choice(shop["products"])
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        webhook_id = str(uuid.UUID(int=_rng.getrandbits(128)))
        title = f"storm {webhook_id[:8]}"
        body = json.dumps(
            {
                "id": product,
                "admin_graphql_api_id": f"gid://shopify/Product/{product}",
                "title": title,
                "status": "active",
                "tags": "storm",
                "updated_at": at,
                "variants": [],
            }
        )
        signature = _sign(body.encode(), PLAN["secret"])
        if roll < 0.15:
            RESULT["forged_sent"] += 1
            if roll < 0.125:
                signature = _sign(body.encode(), "not-the-app-secret")
                domain = shop["domain"]
            else:
                domain = f"unknown-{_rng.randrange(10**6)}.myshopify.com"
            status = self._post("forged", domain, body.encode(), signature, webhook_id)
            RESULT["forged_accepted"] += status == 200
            return
        RESULT["sent"] += 1
        RESULT["pending"][webhook_id] = (shop["name"], webhook_id, product, at, title)
        status = self._post("webhook", shop["domain"], body.encode(), signature, webhook_id)
        del RESULT["pending"][webhook_id]
        if status == 200:
            accepted.append((shop["name"], webhook_id, product, at, title, body))
        else:
            RESULT["errors"] += 1


class Reader(FastHttpUser):
    """A storefront reading the mirror through the read API, with the shop's API key."""

    wait_time = between(0.05, 0.2)

    def _read(self, shop: dict[str, Any], path: str, name: str, ok: tuple[int, ...]) -> None:
        with self.client.get(
            path,
            headers={"Authorization": f"Bearer {shop['key']}"},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code not in ok:
                RESULT["read_errors"] += 1
                response.failure(f"status {response.status_code}")

    @task(3)
    def page(self) -> None:
        self._read(_rng.choice(PLAN["readers"]), "/api/products?limit=50", "read-page", (200,))

    @task(1)
    def one(self) -> None:
        shop = _rng.choice(PLAN["readers"])
        product = _rng.choice(shop["sample"])
        self._read(shop, f"/api/products/{product}", "read-one", (200, 404))

    @task(1)
    def search(self) -> None:
        # Hybrid search under the same load: the API embeds the query with the local model.
        query = urlencode({"q": _rng.choice(SEARCHES), "limit": 10})
        self._read(_rng.choice(PLAN["readers"]), f"/api/search?{query}", "search", (200,))


SEARCHES = ["warm wool blanket", "leather boots", "ceramic mug", "garden lamp", "steel knife"]


def _percentiles(env: Environment, name: str, method: str) -> dict[str, float]:
    entry = env.stats.get(name, method)
    return {
        "count": entry.num_requests,
        "failures": entry.num_failures,
        "p50_ms": entry.get_response_time_percentile(0.50) or 0.0,
        "p95_ms": entry.get_response_time_percentile(0.95) or 0.0,
        "p99_ms": entry.get_response_time_percentile(0.99) or 0.0,
        "rps": entry.total_rps,
    }


def main() -> None:
    plan_path, result_path = sys.argv[1], sys.argv[2]
    PLAN.update(json.loads(open(plan_path).read()))
    _rng.seed(PLAN.get("seed", 1))
    users = int(PLAN["users"])
    Storm.wait_time = constant_throughput(PLAN["rate_per_s"] / users)
    Storm.host = Reader.host = PLAN["api_url"]
    classes: list[type[User]] = [Storm]
    counts = {"Storm": users}
    if PLAN.get("readers"):
        classes.append(Reader)
        counts["Reader"] = int(PLAN.get("reader_users", 5))
    env = Environment(user_classes=classes, events=events)
    runner = env.create_local_runner()
    runner.start_shape = None  # type: ignore[assignment]
    runner.spawn_users(counts, wait=False)
    started = time.time()
    gevent.sleep(PLAN["seconds"])
    runner.quit()
    elapsed = time.time() - started
    RESULT["seconds"] = elapsed
    RESULT["webhook"] = _percentiles(env, "webhook", "POST")
    RESULT["duplicate"] = _percentiles(env, "webhook-duplicate", "POST")
    RESULT["forged"] = _percentiles(env, "forged", "POST")
    RESULT["read_page"] = _percentiles(env, "read-page", "GET")
    RESULT["read_one"] = _percentiles(env, "read-one", "GET")
    RESULT["search"] = _percentiles(env, "search", "GET")
    RESULT["accepted"] = [list(a[:5]) for a in RESULT["accepted"]]
    RESULT["unanswered"] = [list(a) for a in RESULT.pop("pending").values()]
    with open(result_path, "w") as out:
        json.dump(RESULT, out)


if __name__ == "__main__":
    main()
