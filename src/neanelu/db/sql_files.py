"""Hand-written SQL shipped with the package, loaded by name: the one loader of `.sql` files.

Each package keeps its statements in its own `sql/` folder (`neanelu/db/sql`, the catalog's
webhook upserts in `neanelu/catalog/sql`, the migrations' in `neanelu/db/migrations/sql`, ...);
`package` names the folder's owner.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources


@cache
def load_sql(name: str, package: str = "neanelu.db") -> str:
    """The text of `<package>/sql/<name>`, e.g. `schema.sql` or `ingest/merge_products.sql`."""
    return resources.files(package).joinpath("sql", name).read_text(encoding="utf-8")


@cache
def load_statements(name: str, package: str = "neanelu.db") -> tuple[str, ...]:
    """A file's statements one by one, for files whose statements take parameters (the extended
    protocol runs one statement per call). Statements end with ';' at the end of a line."""
    return tuple(s.strip() for s in re.split(r";\s*\n", load_sql(name, package)) if _has_code(s))


def _has_code(statement: str) -> bool:
    return any(
        line.strip() and not line.strip().startswith("--") for line in statement.splitlines()
    )
