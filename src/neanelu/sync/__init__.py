"""The sync domain: full and incremental catalog syncs as runs with recorded state."""
