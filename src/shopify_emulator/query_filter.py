"""Shopify's search syntax, the part the project uses: `updated_at:>2026-01-01T00:00:00Z status:active`.

Terms are ANDed. Dates compare as normalised ISO strings, which sort chronologically in the `...Z` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_TERM = re.compile(r"""(-?)(\w+):(>=|<=|>|<)?("[^"]*"|'[^']*'|\S+)""")


class FilterError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Term:
    negate: bool
    field: str
    op: str
    value: str


def parse(query: str | None) -> list[Term]:
    if not query or not query.strip():
        return []
    terms: list[Term] = []
    for match in _TERM.finditer(query):
        negate, field, op, raw = match.groups()
        value = raw.strip("\"'")
        if field in ("updated_at", "created_at"):
            value = normalise_date(value)
        terms.append(Term(negate=bool(negate), field=field, op=op or "=", value=value))
    leftover = _TERM.sub("", query).replace("AND", "").strip()
    if leftover:
        raise FilterError(f"unsupported search syntax: {leftover!r}")
    return terms


def normalise_date(value: str) -> str:
    value = value.replace("+00:00", "Z")
    if len(value) == 10:
        return value + "T00:00:00Z"
    if "." in value:
        # Fractions of a second do not change the ordering at the second resolution used here.
        head, _, tail = value.partition(".")
        return head + ("Z" if tail.endswith("Z") else "")
    return value


def _compare(actual: Any, op: str, expected: str) -> bool:
    if isinstance(actual, list):
        # A list field (tags) matches when any of its values does.
        return any(_compare(item, op, expected) for item in actual)
    if isinstance(actual, int):
        try:
            wanted: Any = int(expected)
        except ValueError:
            return False
    else:
        actual = str(actual).lower()
        wanted = expected.lower()
    if op == ">":
        return bool(actual > wanted)
    if op == ">=":
        return bool(actual >= wanted)
    if op == "<":
        return bool(actual < wanted)
    if op == "<=":
        return bool(actual <= wanted)
    return bool(actual == wanted)


def matches(terms: list[Term], values: dict[str, Any]) -> bool:
    for term in terms:
        if term.field not in values:
            raise FilterError(f"unsupported search field {term.field!r}")
        hit = _compare(values[term.field], term.op, term.value)
        if hit == term.negate:
            return False
    return True
