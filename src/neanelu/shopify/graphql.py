"""Admin GraphQL client for one shop: spends from a cost budget, reads `extensions.cost`, turns
Shopify's failures into typed errors."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import msgspec
from opentelemetry import trace

from neanelu.shopify.budget import CostBudget, ThrottleStatus, UnlimitedBudget
from neanelu.shopify.errors import (
    AccessDenied,
    InvalidToken,
    QueryError,
    Throttled,
    TransientError,
)
from neanelu.telemetry.metrics import current_metrics, plan_of

# Used when a query's cost is not known in advance; Shopify refunds the difference after the call.
DEFAULT_ESTIMATED_COST = 50.0
_MAX_TRANSIENT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class ShopEndpoint:
    """Where one shop's Admin API is. `base_url` overrides https://{domain} (the emulator in
    development); the shop then travels in the Host header, as a proxy would send it."""

    domain: str
    api_version: str
    base_url: str | None = None

    @property
    def origin(self) -> str:
        return (self.base_url or f"https://{self.domain}").rstrip("/")

    @property
    def headers(self) -> dict[str, str]:
        return {"Host": self.domain} if self.base_url else {}

    def admin_url(self, path: str) -> str:
        return f"{self.origin}/admin/{path.lstrip('/')}"

    @property
    def graphql_url(self) -> str:
        return self.admin_url(f"api/{self.api_version}/graphql.json")


@dataclass(frozen=True, slots=True)
class GraphQLResult:
    data: dict[str, Any]
    requested_cost: float | None
    actual_cost: float | None
    throttle: ThrottleStatus | None


@dataclass(slots=True)
class AdminClient:
    http: httpx.AsyncClient
    endpoint: ShopEndpoint
    access_token: str = field(repr=False)
    budget: CostBudget = field(default_factory=UnlimitedBudget)

    async def execute(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        estimated_cost: float = DEFAULT_ESTIMATED_COST,
    ) -> GraphQLResult:
        """Run one query. Throttling raises `Throttled` after blocking the shop's budget, so the
        caller (a queue job) defers instead of spinning; 5xx and resets retry a few times."""
        attempt = 0
        while True:
            await self.budget.acquire(estimated_cost)
            try:
                return await self._once(query, variables, estimated_cost)
            except TransientError:
                await self.budget.refund(estimated_cost)
                attempt += 1
                if attempt > _MAX_TRANSIENT_RETRIES:
                    raise
                await asyncio.sleep(min(8.0, 0.25 * 2**attempt) * (0.5 + random.random()))

    async def _once(
        self, query: str, variables: dict[str, Any] | None, estimated: float
    ) -> GraphQLResult:
        try:
            response = await self.http.post(
                self.endpoint.graphql_url,
                content=msgspec.json.encode({"query": query, "variables": variables or {}}),
                headers={
                    **self.endpoint.headers,
                    "X-Shopify-Access-Token": self.access_token,
                    "Content-Type": "application/json",
                    "Accept": "application/json",
                },
            )
        except (httpx.TransportError, httpx.TimeoutException) as exc:
            raise TransientError(f"{self.endpoint.domain}: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            current_metrics().shopify_throttles.labels("unknown", "http_429").inc()
            await self.budget.block(retry_after)
            raise Throttled(retry_after, "HTTP 429")
        if response.status_code >= 500:
            raise TransientError(f"{self.endpoint.domain}: HTTP {response.status_code}")
        if response.status_code == 401:
            await self.budget.refund(estimated)
            raise InvalidToken(f"{self.endpoint.domain}: access token rejected (HTTP 401)")
        if response.status_code in (402, 403, 404, 423):
            await self.budget.refund(estimated)
            raise AccessDenied(f"{self.endpoint.domain}: HTTP {response.status_code}")
        if response.status_code != 200:
            await self.budget.refund(estimated)
            raise QueryError(f"{self.endpoint.domain}: HTTP {response.status_code}")
        try:
            body = msgspec.json.decode(response.content)
        except msgspec.DecodeError:
            raise TransientError(f"{self.endpoint.domain}: response is not JSON") from None
        return await self._interpret(body, estimated)

    async def _interpret(self, body: Any, estimated: float) -> GraphQLResult:
        if not isinstance(body, dict):
            raise TransientError(f"{self.endpoint.domain}: unexpected response shape")
        cost = (body.get("extensions") or {}).get("cost") or {}
        throttle = _throttle(cost.get("throttleStatus"))
        if throttle is not None:
            await self.budget.observe(throttle)
        requested = _number(cost.get("requestedQueryCost"))
        actual = _number(cost.get("actualQueryCost"))
        errors = body.get("errors") or []
        codes = [((e or {}).get("extensions") or {}).get("code") for e in errors]
        _record_cost(throttle, requested, actual, throttled="THROTTLED" in codes)
        if "THROTTLED" in codes:
            wait = _refill_time(throttle, requested or estimated)
            await self.budget.block(wait)
            raise Throttled(wait, "THROTTLED")
        # The budget took `estimated` up front; give back what Shopify did not charge.
        charged = actual if actual is not None else (requested or 0.0)
        if estimated > charged:
            await self.budget.refund(estimated - charged)
        if "ACCESS_DENIED" in codes:
            raise AccessDenied(
                f"{self.endpoint.domain}: {errors[0].get('message', 'access denied')}"
            )
        if errors and not body.get("data"):
            first = errors[0] or {}
            raise QueryError(
                f"{self.endpoint.domain}: {first.get('message', 'GraphQL error')}", codes[0]
            )
        return GraphQLResult(body.get("data") or {}, requested, actual, throttle)


def _record_cost(
    throttle: ThrottleStatus | None,
    requested: float | None,
    actual: float | None,
    *,
    throttled: bool,
) -> None:
    """Cost used, throttle events and the bucket left, by plan (read from the restore rate)."""
    m = current_metrics()
    plan = plan_of(throttle.restore_rate) if throttle is not None else "unknown"
    if requested is not None:
        m.shopify_cost.labels(plan, "requested").inc(requested)
    if actual is not None:
        m.shopify_cost.labels(plan, "actual").inc(actual)
    if throttle is not None:
        m.observe_budget(
            maximum=throttle.maximum_available,
            available=throttle.currently_available,
            restore_rate=throttle.restore_rate,
        )
    if throttled:
        m.shopify_throttles.labels(plan, "throttled").inc()
    current = trace.get_current_span()
    if current.is_recording():
        if actual is not None:
            current.set_attribute("shopify.cost.actual", actual)
        if throttle is not None:
            current.set_attribute("shopify.cost.available", throttle.currently_available)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _throttle(raw: object) -> ThrottleStatus | None:
    if not isinstance(raw, dict):
        return None
    maximum = _number(raw.get("maximumAvailable"))
    current = _number(raw.get("currentlyAvailable"))
    rate = _number(raw.get("restoreRate"))
    if maximum is None or current is None or rate is None or rate <= 0:
        return None
    return ThrottleStatus(maximum, current, rate)


def _refill_time(throttle: ThrottleStatus | None, needed: float) -> float:
    """Seconds until the bucket holds `needed` points, from Shopify's own figures."""
    if throttle is None:
        return 1.0
    missing = max(0.0, needed - throttle.currently_available)
    return max(0.05, missing / throttle.restore_rate)


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value is not None else 1.0
    except ValueError:
        seconds = 1.0
    return min(max(seconds, 0.0), 60.0)
