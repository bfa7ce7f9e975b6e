"""Shops: install (OAuth), the token vault, token refresh, uninstall and purge."""
