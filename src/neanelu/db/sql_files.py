"""Hand-written SQL shipped with the package, loaded by name."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources


@cache
def load_sql(name: str) -> str:
    """The text of `neanelu/db/sql/<name>`, e.g. `schema.sql` or `ingest/merge_products.sql`."""
    return resources.files("neanelu.db").joinpath("sql", name).read_text(encoding="utf-8")


@cache
def load_statements(name: str) -> tuple[str, ...]:
    """A file's statements one by one, for files whose statements take parameters (the extended
    protocol runs one statement per call). Statements end with ';' at the end of a line."""
    return tuple(s.strip() for s in re.split(r";\s*\n", load_sql(name)) if _has_code(s))


def _has_code(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )
