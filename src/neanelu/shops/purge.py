"""Purging a shop's data: the scheduled purge after an uninstall, and Shopify's `shop/redact`.

Either deletes the shop row, and with it its catalog, runs, inbox and tokens, only when that is
due, and either leaves a record in `purge_audit`, which names the shop without referencing it and
so outlives the purge. A request that is not due (the shop reinstalled, or uninstalled too
recently, or a payload naming another shop) is recorded and skipped, not raised: no retry would
make it due, and the scheduled purge still follows every uninstall. Both run in the shop's tenant
scope with its row locked, so a reinstall and a purge never interleave.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec

from neanelu.db.pool import Conn
from neanelu.shops import repository

log = logging.getLogger(__name__)

SCHEDULED = "scheduled"
SHOP_REDACT = "shop/redact"
PURGED = "purged"
SKIPPED = "skipped"
# Shopify sends shop/redact 48 hours after the uninstall.
REDACT_MIN_AGE = timedelta(hours=48)
_MAX_RECORDED = 255  # of a payload's domain: enough for any shop domain


@dataclass(frozen=True, slots=True)
class RedactRequest:
    """What a shop/redact delivery asks for: its webhook id and the shop its payload names."""

    webhook_id: str
    shop_domain: str | None
    shop_id: int | None  # Shopify's numeric id

    @classmethod
    def from_payload(cls, webhook_id: str, payload: str) -> RedactRequest:
        """Tolerant: a field that is missing or of the wrong type reads as None (and the request
        is then skipped with that reason)."""
        try:
            body: Any = msgspec.json.decode(payload)
        except msgspec.DecodeError:
            body = None
        fields = body if isinstance(body, dict) else {}
        domain = fields.get("shop_domain")
        shop_id = fields.get("shop_id")
        if isinstance(shop_id, str) and shop_id.isdigit():
            shop_id = int(shop_id)
        return cls(
            webhook_id,
            domain.strip().lower()[:_MAX_RECORDED] if isinstance(domain, str) else None,
            shop_id if isinstance(shop_id, int) and not isinstance(shop_id, bool) else None,
        )


@dataclass(frozen=True, slots=True)
class PurgeOutcome:
    outcome: str  # PURGED or SKIPPED
    reason: str

    @property
    def purged(self) -> bool:
        return self.outcome == PURGED


async def purge_if_due(
    conn: Conn, shop_id: UUID, *, now: datetime | None = None
) -> PurgeOutcome | None:
    """The scheduled purge: due once the shop is uninstalled and its purge time has come (a
    reinstall cancels it). None when the shop is gone already."""
    state = await repository.lock_for_purge(conn, shop_id)
    if state is None:
        return None
    at = now or datetime.now(UTC)
    if state.status != repository.UNINSTALLED or state.purge_after is None:
        reason = _not_uninstalled(state)
    elif state.purge_after > at:
        reason = f"not due before {state.purge_after:%Y-%m-%d %H:%M:%S}Z"
    else:
        reason = None
    return await _record_and_apply(conn, shop_id, state, SCHEDULED, reason, None)


async def redact(
    conn: Conn,
    shop_id: UUID,
    request: RedactRequest,
    *,
    min_age: timedelta = REDACT_MIN_AGE,
    now: datetime | None = None,
) -> PurgeOutcome | None:
    """Shopify's shop/redact: due when the payload names this shop, and the shop uninstalled at
    least `min_age` ago and has not reinstalled since. None when the shop is gone already."""
    state = await repository.lock_for_purge(conn, shop_id)
    if state is None:
        return None
    reason = _redact_refused(state, request, min_age, now or datetime.now(UTC))
    return await _record_and_apply(conn, shop_id, state, SHOP_REDACT, reason, request)


def _redact_refused(
    state: repository.PurgeState, request: RedactRequest, min_age: timedelta, now: datetime
) -> str | None:
    """Why the redact is not due, or None when it is."""
    if request.shop_domain != state.domain:
        named = "no shop_domain" if request.shop_domain is None else repr(request.shop_domain)
        return f"the payload names {named}, not {state.domain}"
    if request.shop_id is None:
        return "the payload names no shop_id"
    if state.shopify_shop_id is not None and request.shop_id != state.shopify_shop_id:
        return f"the payload names shop_id {request.shop_id}, not {state.shopify_shop_id}"
    if state.status != repository.UNINSTALLED or state.uninstalled_at is None:
        return _not_uninstalled(state)
    if now - state.uninstalled_at < min_age:
        return (
            f"uninstalled at {state.uninstalled_at:%Y-%m-%d %H:%M:%S}Z, less than "
            f"{_hours(min_age)} ago"
        )
    return None


def _not_uninstalled(state: repository.PurgeState) -> str:
    if state.installed_at is not None and state.status != repository.UNINSTALLED:
        return f"the shop is installed (since {state.installed_at:%Y-%m-%d %H:%M:%S}Z)"
    return f"the shop is {state.status}, not uninstalled"


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:g} h"


async def _record_and_apply(
    conn: Conn,
    shop_id: UUID,
    state: repository.PurgeState,
    requested_by: str,
    refused: str | None,
    request: RedactRequest | None,
) -> PurgeOutcome:
    if refused is None:
        since = state.uninstalled_at
        outcome = PurgeOutcome(
            PURGED, f"uninstalled at {since:%Y-%m-%d %H:%M:%S}Z" if since else "uninstalled"
        )
    else:
        outcome = PurgeOutcome(SKIPPED, refused)
    # Written before the delete, in the same transaction: the record commits with the purge.
    await conn.execute(
        "INSERT INTO purge_audit (shop_id, shop_domain, requested_by, webhook_id, "
        "payload_shop_domain, payload_shop_id, outcome, reason, uninstalled_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            shop_id,
            state.domain,
            requested_by,
            request.webhook_id if request else None,
            request.shop_domain if request else None,
            request.shop_id if request else None,
            outcome.outcome,
            outcome.reason,
            state.uninstalled_at,
        ),
    )
    if outcome.purged:
        await repository.delete(conn, shop_id)
        log.info("shop %s (%s) purged with all its data (%s)", shop_id, state.domain, requested_by)
    else:
        log.info(
            "shop %s (%s): %s purge skipped: %s",
            shop_id,
            state.domain,
            requested_by,
            outcome.reason,
        )
    return outcome
