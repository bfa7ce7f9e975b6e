"""Secrets out of log events: values under sensitive keys, and token shapes inside any string.

Shopify tokens have recognisable prefixes; HMACs are 64 hex digits or 44 base64 characters; URLs
of signed files carry their signature in the query. A message built with an f-string by someone
who forgot is scrubbed the same way as a structured field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "[REDACTED]"

_SENSITIVE_KEY = re.compile(
    r"(token|secret|passw|hmac|authorization|api[_-]?key|cookie|signature|credential|"
    r"private[_-]?key|encryption[_-]?key)",
    re.IGNORECASE,
)
# Keys that look sensitive by name but hold only identifiers of things, never the secret.
_SAFE_KEYS = frozenset({"token_kind", "tokens", "token_count", "key_id"})

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Shopify access, user, shared-secret, refresh, custom-app and partner tokens.
    (re.compile(r"\b(shp(?:at|ua|ss|rt|ca|pa|tka))_[A-Za-z0-9_\-]+"), rf"\1_{MASK}"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1{MASK}"),
    # A base64 HMAC-SHA256 (44 chars) written near the word hmac (header or message).
    (
        re.compile(r"(?i)(hmac[\w\-]*[\"']?\s*[:=]?\s*[\"']?)[A-Za-z0-9+/]{43}="),
        rf"\1{MASK}",
    ),
    (re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])"), MASK),
    # Secrets in URL queries: signed download URLs, OAuth callbacks.
    (
        re.compile(
            r"(?i)([?&](?:signature|sig|token|access_token|refresh_token|hmac|code|"
            r"client_secret|x-amz-signature|x-goog-signature)=)[^&#\s\"']+"
        ),
        rf"\1{MASK}",
    ),
    # key=value or "key": "value" pairs written into a message.
    (
        re.compile(
            r"(?i)((?:access[_-]?token|refresh[_-]?token|client[_-]?secret|api[_-]?secret|"
            r"password|x-shopify-access-token)[\"']?\s*[:=]\s*[\"']?)[^\s\"',&}]+"
        ),
        rf"\1{MASK}",
    ),
)


def scrub(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def sensitive_key(key: str) -> bool:
    return key not in _SAFE_KEYS and _SENSITIVE_KEY.search(key) is not None


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of `value` with secrets masked; containers are walked a few levels deep."""
    if isinstance(value, str):
        return scrub(value)
    if _depth > 6:
        return value
    if isinstance(value, Mapping):
        return {
            k: MASK if isinstance(k, str) and sensitive_key(k) else redact(v, _depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(v, _depth + 1) for v in value)
    if isinstance(value, bytes | bytearray):
        return scrub(bytes(value).decode("utf-8", "replace"))
    return value
