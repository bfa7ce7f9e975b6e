"""The two header families Shopify delivers webhooks with.

Classic webhook deliveries carry `X-Shopify-*` headers; Events deliveries carry the same fields
without the `X-` prefix (`shopify-hmac-sha256`, `shopify-topic`, ...), and may have no webhook id,
only an event id. As in Shopify's own library, the family is chosen by the signature header that
is present (`X-` first), and every other field is read from that family alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache

_MAX_VALUE = 255


class HeaderError(ValueError):
    """A required header is missing, or a header's value is not one Shopify would send."""


@dataclass(frozen=True, slots=True)
class HeaderFamily:
    prefix: str  # "X-Shopify-" or "shopify-", as the names are printed in errors

    def name(self, field: str) -> str:
        # Events deliveries spell every name in lowercase; errors name them as Shopify does.
        name = self.prefix + field
        return name.lower() if self.prefix.islower() else name


@cache
def _key(family: HeaderFamily, field: str) -> str:
    # ASGI servers hand header names over in lowercase.
    return family.name(field).lower()


CLASSIC = HeaderFamily("X-Shopify-")
EVENTS = HeaderFamily("shopify-")


@dataclass(frozen=True, slots=True)
class DeliveryHeaders:
    family: HeaderFamily
    signature: str
    topic: str
    shop_domain: str
    webhook_id: str  # the delivery's key in the inbox (the event id where no webhook id came)
    event_id: str | None
    api_version: str | None
    triggered_at: str | None


def by_name(raw: Sequence[tuple[bytes, bytes]]) -> dict[str, str]:
    """An ASGI scope's headers by lowercase name, the first of repeated ones winning (as
    Starlette's `Headers.get`): built in one pass, where each `Headers.get` scans them all."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


def family_of(headers: Mapping[str, str]) -> HeaderFamily | None:
    """The family whose signature header is present; None when neither is."""
    for family in (CLASSIC, EVENTS):
        if _value(headers, _key(family, "Hmac-Sha256")):
            return family
    return None


def read(headers: Mapping[str, str], family: HeaderFamily) -> DeliveryHeaders:
    """Every field a delivery needs, from one family. `API-Version` is optional: Shopify omits
    it on some compliance topics."""
    signature = _value(headers, _key(family, "Hmac-Sha256")) or ""
    event_id = _optional(headers, family, "Event-Id")
    webhook_id = _optional(headers, family, "Webhook-Id")
    if webhook_id is None and family is EVENTS:
        webhook_id = event_id
    if webhook_id is None:
        missing = family.name("Webhook-Id")
        raise HeaderError(
            f"header {missing} is missing"
            if family is CLASSIC
            else f"headers {missing} and {family.name('Event-Id')} are missing"
        )
    return DeliveryHeaders(
        family=family,
        signature=signature,
        topic=_required(headers, family, "Topic"),
        shop_domain=_required(headers, family, "Shop-Domain"),
        webhook_id=webhook_id,
        event_id=event_id,
        api_version=_optional(headers, family, "API-Version"),
        triggered_at=_optional(headers, family, "Triggered-At"),
    )


def _value(headers: Mapping[str, str], key: str) -> str | None:
    value = headers.get(key)
    if value is None:
        return None
    value = value.strip()
    return value or None


def _required(headers: Mapping[str, str], family: HeaderFamily, field: str) -> str:
    value = _optional(headers, family, field)
    if value is None:
        raise HeaderError(f"header {family.name(field)} is missing")
    return value


def _optional(headers: Mapping[str, str], family: HeaderFamily, field: str) -> str | None:
    value = _value(headers, _key(family, field))
    if value is not None and (len(value) > _MAX_VALUE or not value.isprintable()):
        raise HeaderError(f"header {family.name(field)} is not a valid value")
    return value
