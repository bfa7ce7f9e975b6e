"""What can go wrong talking to Shopify, each kind its own class so callers decide per kind."""

from __future__ import annotations


class ShopifyError(Exception):
    """Base class. Messages never contain tokens or secrets."""


class Throttled(ShopifyError):
    """THROTTLED or HTTP 429: the shop's bucket is empty for about `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "throttled by Shopify") -> None:
        super().__init__(f"{message} (retry after {retry_after:.2f} s)")
        self.retry_after = retry_after


class TransientError(ShopifyError):
    """5xx, timeouts, connection resets: worth retrying later."""


class AccessDenied(ShopifyError):
    """The token lacks a scope or was revoked: retrying will not help."""


class InvalidToken(AccessDenied):
    """401: the access token is expired, revoked or unknown."""


class QueryError(ShopifyError):
    """GraphQL errors that are not throttling (invalid query, MAX_COST_EXCEEDED, user errors)."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class BulkOperationError(ShopifyError):
    """A bulk operation ended without a usable result."""

    def __init__(self, message: str, *, retryable: bool, error_code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.error_code = error_code
