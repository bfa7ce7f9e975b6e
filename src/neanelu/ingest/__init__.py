"""Bulk JSONL -> lines -> typed records -> binary COPY into staging -> merge. No HTTP here."""
