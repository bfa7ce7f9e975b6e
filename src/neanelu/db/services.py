"""Where the servers are: the configured URLs, or the embedded servers started on demand."""

from __future__ import annotations

from dataclasses import dataclass

from neanelu.config import Settings
from neanelu.db.embedded import APP_ROLE, OWNER_ROLE, start_postgres, start_redis


@dataclass(frozen=True, slots=True)
class ServiceUrls:
    postgres_app: str
    postgres_owner: str
    redis: str
    embedded_postgres: bool
    embedded_redis: bool
    app_role: str = APP_ROLE


def resolve_services(settings: Settings) -> ServiceUrls:
    """Use POSTGRES_URL / REDIS_URL when set; otherwise start (or reuse) the embedded servers."""
    if settings.postgres_url:
        app_url = settings.postgres_url
        owner_url = settings.postgres_owner_url or settings.postgres_url
        embedded_pg = False
    else:
        pg = start_postgres(settings.data_dir)
        app_url, owner_url = pg.url(APP_ROLE), pg.url(OWNER_ROLE)
        embedded_pg = True
    if settings.redis_url:
        redis_url, embedded_redis = settings.redis_url, False
    else:
        redis_url, embedded_redis = start_redis(settings.data_dir).url, True
    return ServiceUrls(app_url, owner_url, redis_url, embedded_pg, embedded_redis)


def redact_url(url: str) -> str:
    """A URL safe to print: the password, if any, replaced."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
