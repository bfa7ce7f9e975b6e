"""Load, failure and soak drills against a whole installation (not collected by pytest)."""
