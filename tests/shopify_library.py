"""`@shopify/shopify-api`'s check of an admin redirect's `hmac`, written out literally from its
source (Shopify/shopify-app-js, packages/apps/shopify-api/lib/utils/hmac-validator.ts
`stringifyQueryForAdmin` and lib/utils/processed-query.ts), independent of neanelu's and the
emulator's code: the tests' reference."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence

# CLDR root collation of printable ASCII, by group (what ICU's `localeCompare` uses in Node).
_WHITESPACE = " "
_PUNCTUATION = "_-,;:!?.'\"()[]{}@*/\\&#%"
_SYMBOLS = "`^+<=>|~$"
_DIGITS = "0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_ROOT_ORDER = _WHITESPACE + _PUNCTUATION + _SYMBOLS + _DIGITS + _LETTERS


def _locale_compare(a: str, b: str) -> int:
    """`a.localeCompare(b)` for ASCII strings: primary strength (case-blind), then tertiary
    (lowercase first)."""

    def primary(s: str) -> list[int]:
        return [_ROOT_ORDER.index(c.lower()) for c in s]

    def tertiary(s: str) -> list[int]:
        return [1 if "A" <= c <= "Z" else 0 for c in s]

    for level in (primary, tertiary):
        left, right = level(a), level(b)
        if left != right:
            return -1 if left < right else 1
    return 0


def _url_search_params_serialise(pairs: list[tuple[str, str]]) -> str:
    """WHATWG application/x-www-form-urlencoded serializer (URLSearchParams.toString)."""

    def encode(text: str) -> str:
        out = []
        for byte in text.encode("utf-8"):
            char = chr(byte)
            if byte == 0x20:
                out.append("+")
            elif char in "*-._" or (char.isascii() and char.isalnum()):
                out.append(char)
            else:
                out.append(f"%{byte:02X}")
        return "".join(out)

    return "&".join(f"{encode(name)}={encode(value)}" for name, value in pairs)


def library_message(query: Mapping[str, str | Sequence[str]]) -> str:
    # const {hmac, signature, ...query} = params
    rest = {k: v for k, v in query.items() if k not in ("hmac", "signature")}
    # Object.keys(query).sort((val1, val2) => val1.localeCompare(val2))
    keys = sorted(rest, key=functools.cmp_to_key(_locale_compare))
    pairs: list[tuple[str, str]] = []
    for key in keys:  # .forEach((key) => processedQuery.put(key, query[key]))
        value = rest[key]
        if isinstance(value, str):  # putSimple
            pairs.append((key, value))
        else:  # putArray: append(`${key}[]`, `${arrayValue}`)
            pairs.extend((f"{key}[]", item) for item in value)
    # processedQuery.toString().replace(/\+/g, '%20')
    return _url_search_params_serialise(pairs).replace("+", "%20")


def library_hmac(query: Mapping[str, str | Sequence[str]], secret: str) -> str:
    message = library_message(query).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
