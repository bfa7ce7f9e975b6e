"""The text Shopify signs in an OAuth callback (and other admin links with an `hmac` parameter).

Built exactly as the official `@shopify/shopify-api` validates it: `stringifyQueryForAdmin` in
lib/utils/hmac-validator.ts over lib/utils/processed-query.ts (Shopify/shopify-app-js):

1. every parameter but `hmac` and `signature`;
2. keys ordered by JavaScript's `a.localeCompare(b)`, which is ICU collation and not code-point
   order: punctuation before digits before letters, letters case-blind first (`a` < `B` < `b`)
   and lowercase before uppercase only to break ties;
3. a list value becomes one `key[]=item` pair per item (`ProcessedQuery.putArray`);
4. the pairs serialised by `URLSearchParams` (UTF-8; only `A-Z a-z 0-9 * - . _` kept as they are,
   everything else `%XX`, a space `+`), then every `+` replaced by `%20` (`stringify`): so a space
   is `%20`, `~` is `%7E` and `*` stays `*` — where Python's `urlencode` gives `+`, `~` and `%2A`.

A parameter that arrives twice counts once, with its last value: the library's OAuth callback reads
the query with `Object.fromEntries(url.searchParams)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import quote

# ICU's root collation order of printable ASCII (what `localeCompare` gives in Node's default
# locale), one primary weight per character, upper and lower case sharing theirs.
_ICU_ASCII_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_PRIMARY = {c: i for i, c in enumerate(_ICU_ASCII_ORDER)} | {
    c.upper(): i for i, c in enumerate(_ICU_ASCII_ORDER) if c.isalpha()
}
_EXCLUDED = ("hmac", "signature")

QueryValue = str | Sequence[str]


def collation_key(key: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sort key equal to `localeCompare` for ASCII keys: primary weights first, then case.

    Shopify's parameter names are ASCII; any other character sorts after all of ASCII by code
    point (a name Shopify never sends belongs to a forged query, which fails to match anyway).
    """
    primary = tuple(_PRIMARY.get(c, len(_ICU_ASCII_ORDER) + ord(c)) for c in key)
    case = tuple(1 if c.isupper() else 0 for c in key)
    return primary, case


def _form_encode(text: str) -> str:
    """`URLSearchParams` serialisation of one name or value, with `%20` for a space."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # A JavaScript string turns a lone surrogate into U+FFFD before encoding; so do we.
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    # quote() keeps A-Z a-z 0-9 _ . - ~ and what `safe` adds; URLSearchParams keeps `*`, not `~`.
    return quote(text, safe="*").replace("~", "%7E")


def signed_message(params: Mapping[str, QueryValue]) -> str:
    """The text whose HMAC-SHA256 (hex, app secret) is the query's `hmac` parameter."""
    pairs: list[str] = []
    for key in sorted((k for k in params if k not in _EXCLUDED), key=collation_key):
        value = params[key]
        if isinstance(value, str):
            pairs.append(f"{_form_encode(key)}={_form_encode(value)}")
        else:
            name = _form_encode(f"{key}[]")
            pairs.extend(f"{name}={_form_encode(item)}" for item in value)
    return "&".join(pairs)
