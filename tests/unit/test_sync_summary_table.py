"""The run summary the CLI prints says what quarantined lines kept and what was not swept."""

from __future__ import annotations

import uuid

from neanelu.cli.sync import summary_table
from neanelu.sync.staging import SyncSummary


def test_caption_reports_kept_rows_orphan_metafields_and_unswept_tables() -> None:
    summary = SyncSummary(uuid.uuid4(), "completed", orphan_metafields=2)
    summary.kept = {"products": [11, 12], "inventory_levels": list(range(1, 8))}
    summary.unswept = ["product_metafields"]
    caption = str(summary_table(summary, 1.0).caption)
    assert "2 orphan metafields quarantined" in caption
    assert "2 products kept as stored (named by quarantined lines): 11, 12" in caption
    assert "7 inventory_levels kept as stored (named by quarantined lines): 1, 2, 3, 4, 5 ..." in (
        caption
    )
    assert "not swept (a quarantined line names no id): product_metafields" in caption
