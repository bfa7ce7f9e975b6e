"""Hand-written SQL shipped with the package, loaded by name."""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def load_sql(name: str) -> str:
    """The text of `neanelu/db/sql/<name>` (or a subfolder path such as `ingest/merge_products.sql`)."""
    return resources.files("neanelu.db").joinpath("sql", name).read_text(encoding="utf-8")
