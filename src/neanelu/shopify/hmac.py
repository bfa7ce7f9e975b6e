"""Webhook signatures: base64 HMAC-SHA256 of the raw body with the app secret.

Shopify rotates an app secret by signing with the new one while the old one may still be in flight,
so verification accepts the current secret and, when configured, the previous one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable


def sign_webhook(body: bytes, secret: str) -> str:
    """The `X-Shopify-Hmac-Sha256` value Shopify would send for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_webhook(body: bytes, signature: str | None, secrets: Iterable[str]) -> bool:
    """True when `signature` is the body's HMAC under one of `secrets` (constant-time compare).

    The header is compared as bytes of its base64 text, never decoded first: a malformed header
    then simply fails to match instead of raising.
    """
    if not signature:
        return False
    given = signature.strip().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        if not secret:
            continue  # an empty key signs for anyone: it is never a valid secret
        # hmac.digest: OpenSSL's one-shot HMAC, without building an HMAC object per call.
        expected = base64.b64encode(hmac.digest(secret.encode(), body, hashlib.sha256))
        # No early exit: every configured secret is tried, so timing does not reveal which matched.
        matched |= hmac.compare_digest(expected, given)
    return matched
