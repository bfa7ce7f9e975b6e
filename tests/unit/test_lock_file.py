"""The lock pins names, versions and hashes only: no download addresses."""

from __future__ import annotations

import re
from pathlib import Path

LOCK = Path(__file__).resolve().parents[2] / "requirements.lock"


def test_lock_file_records_no_url_and_hashes_every_pin() -> None:
    text = LOCK.read_text()
    assert not re.search(r"[a-z+]+://", text)
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, flags=re.M)
    assert len(pins) > 50
    blocks = re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", text.split("\n\n", 1)[-1])
    for block in blocks:
        if "==" in block.split("\n", 1)[0]:
            assert "--hash=sha256:" in block, block.split("\n", 1)[0]
