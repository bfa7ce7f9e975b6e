"""Settings: built once per entrypoint (CLI command, API process, worker) and passed down.

Nothing here is read at import time; `Settings()` reads the environment and `.env` when called.
"""

from __future__ import annotations

import base64
import binascii
import os
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values copied from .env.example or tutorials that must never reach a running production system.
PLACEHOLDERS = frozenset(
    {"", "changeme", "change-me", "changethis", "secret", "xxx", "todo", "replace-me"}
)
# Secrets that are public because they ship with this repository: the local defaults and the
# emulator's test apps (src/shopify_emulator/config.py; the emulator is not imported here).
KNOWN_SECRETS = frozenset(
    {
        "neanelu-local-client-secret",
        "shpss_emulator_client_secret_0123456789",
        "shpss_other_app_client_secret_987654321",
    }
)
# Shopify's app secrets are 32 hex characters (`shpss_` + 32 on newer apps): anything shorter
# was not issued by Shopify.
MIN_SECRET_LENGTH = 32
# The development key, as bytes: compared after decoding, so hex, padding or spaces do not hide it.
LOCAL_ENCRYPTION_KEY = b"neanelu-local-development-key-32"
# A random 32-byte key has about 30 distinct byte values; a key with few is typed, not generated.
MIN_KEY_DISTINCT_BYTES = 16

DEFAULT_SCOPES = ("read_products", "read_inventory", "read_locations")


class Mode(StrEnum):
    LOCAL = "local"
    # Every production check, but Admin API calls may go to SHOPIFY_BASE_URL (a Shopify emulator
    # or a recording proxy): a staging install, or the deployment drill on a host without Shopify.
    STAGING = "staging"
    PRODUCTION = "production"


class SettingsError(Exception):
    """One line naming the variable that stopped start-up."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=(".env", ".env.local"), env_file_encoding="utf-8", extra="ignore"
    )

    mode: Mode = Field(default=Mode.LOCAL, validation_alias="NEANELU_MODE")
    data_dir: Path = Field(default=Path(".data"), validation_alias="NEANELU_DATA_DIR")

    shopify_api_key: str = Field(
        default="neanelu-local-client-id", validation_alias="SHOPIFY_API_KEY"
    )
    shopify_api_secret: SecretStr = Field(
        default=SecretStr("neanelu-local-client-secret"), validation_alias="SHOPIFY_API_SECRET"
    )
    # The previous app secret stays valid for HMAC checks while Shopify rotates it.
    shopify_api_secret_previous: SecretStr | None = Field(
        default=None, validation_alias="SHOPIFY_API_SECRET_PREVIOUS"
    )
    shopify_scopes: Annotated[tuple[str, ...], NoDecode] = Field(
        default=DEFAULT_SCOPES, validation_alias="SHOPIFY_SCOPES"
    )
    shopify_api_version: str = Field(default="2026-01", validation_alias="SHOPIFY_API_VERSION")
    # Development only: send Admin API calls to this base URL (the emulator) with the shop in `Host`.
    shopify_base_url: str | None = Field(default=None, validation_alias="SHOPIFY_BASE_URL")

    postgres_url: str | None = Field(default=None, validation_alias="POSTGRES_URL")
    # Migrations run as the owner role; the application connects as a role that owns nothing.
    postgres_owner_url: str | None = Field(default=None, validation_alias="POSTGRES_OWNER_URL")
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    encryption_key_256: SecretStr = Field(
        default=SecretStr(base64.b64encode(LOCAL_ENCRYPTION_KEY).decode()),
        validation_alias="ENCRYPTION_KEY_256",
    )
    # Older keys, newest first, as "id:base64key" pairs separated by commas; kept to decrypt until rotated.
    encryption_keys_previous: SecretStr | None = Field(
        default=None, validation_alias="ENCRYPTION_KEYS_PREVIOUS"
    )
    app_host: str = Field(default="http://127.0.0.1:8000", validation_alias="APP_HOST")
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    otel_sample_ratio: float = Field(
        default=0.1, ge=0.0, le=1.0, validation_alias="OTEL_SAMPLE_RATIO"
    )

    db_pool_min: int = Field(default=1, ge=1, validation_alias="DB_POOL_MIN")
    db_pool_max: int = Field(default=10, ge=1, le=500, validation_alias="DB_POOL_MAX")
    redis_pool_max: int = Field(default=50, ge=1, le=10_000, validation_alias="REDIS_POOL_MAX")
    worker_concurrency: int = Field(
        default=10, ge=1, le=1000, validation_alias="WORKER_CONCURRENCY"
    )
    group_concurrency: int = Field(
        default=2, ge=1, le=100, validation_alias="QUEUE_GROUP_CONCURRENCY"
    )
    global_concurrency: int = Field(
        default=50, ge=1, le=10_000, validation_alias="QUEUE_GLOBAL_CONCURRENCY"
    )
    webhook_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, validation_alias="WEBHOOK_MAX_BODY_BYTES"
    )
    bad_line_max_share: float = Field(
        default=0.01, ge=0.0, le=1.0, validation_alias="SYNC_BAD_LINE_MAX_SHARE"
    )
    # A shop/redact purges the shop's data only this long after its uninstall (Shopify sends it 48 h
    # after); an earlier one is recorded and skipped.
    shop_redact_min_age_hours: float = Field(
        default=48.0, ge=0.0, le=24 * 365, validation_alias="SHOP_REDACT_MIN_AGE_HOURS"
    )
    # Telemetry. OTEL_SDK_DISABLED is OpenTelemetry's own switch: no provider, no instrumentation.
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    # `auto`: JSON unless stderr is a terminal; `json` or `console` force one.
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="LOG_FORMAT"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    # Each worker process serves /metrics here (0: not served).
    metrics_port: int = Field(default=9464, ge=0, le=65535, validation_alias="METRICS_PORT")
    # The API serves its /metrics on this port of its own, never on the public API port.
    api_metrics_port: int = Field(default=9463, ge=0, le=65535, validation_alias="API_METRICS_PORT")
    # Loopback unless configured: /metrics tells anyone who reaches it the queue depths, shop
    # plans and error rates. `0.0.0.0` (or `::`) when Prometheus scrapes from another host.
    metrics_host: str = Field(default="127.0.0.1", min_length=1, validation_alias="METRICS_HOST")
    # /docs and /openapi.json: on in local mode, off in production unless asked for.
    api_docs: bool | None = Field(default=None, validation_alias="API_DOCS")

    # What uvicorn and the protocol guard bound (neanelu.web.server).
    http_header_timeout_s: float = Field(
        default=10.0, gt=0, le=300, validation_alias="HTTP_HEADER_TIMEOUT_S"
    )
    http_body_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, validation_alias="HTTP_BODY_TIMEOUT_S"
    )
    http_keepalive_timeout_s: int = Field(
        default=5, ge=1, le=300, validation_alias="HTTP_KEEPALIVE_TIMEOUT_S"
    )
    http_max_header_bytes: int = Field(
        default=16_384, ge=1024, le=1_048_576, validation_alias="HTTP_MAX_HEADER_BYTES"
    )
    http_max_connections: int = Field(
        default=1000, ge=1, le=100_000, validation_alias="HTTP_MAX_CONNECTIONS"
    )
    http_max_body_bytes: int = Field(
        default=65_536, ge=1024, le=16_777_216, validation_alias="HTTP_MAX_BODY_BYTES"
    )

    # Semantic search (docs/search.md): the embedding provider and what a product's text takes in.
    # Unset: the OpenAI provider when OPENAI_API_KEY is set, the local model otherwise.
    search_provider: Literal["local", "openai"] | None = Field(
        default=None, validation_alias="SEARCH_PROVIDER"
    )
    search_threads: int = Field(default=0, ge=0, le=256, validation_alias="SEARCH_THREADS")
    search_batch_size: int = Field(default=8, ge=1, le=2048, validation_alias="SEARCH_BATCH_SIZE")
    # The local model's weights: int8 (the default, ~1.6x faster on AVX2) or float32 (exact).
    search_precision: Literal["int8", "float32"] = Field(
        default="int8", validation_alias="SEARCH_PRECISION"
    )
    # `namespace.key` of the product metafields whose values join the embedded text.
    search_metafields: Annotated[tuple[str, ...], NoDecode] = Field(
        default=(), validation_alias="SEARCH_METAFIELDS"
    )
    search_sweep_interval_s: int = Field(
        default=3600, ge=60, le=604_800, validation_alias="SEARCH_SWEEP_INTERVAL_S"
    )
    # The Redis hot cache (docs/search.md): a shop searched while cold is loaded by a `search.warm`
    # job, and one not searched for this long is dropped from Redis at the next sweep. 0: only
    # `neanelu search-warm` loads shops, and none leaves on its own.
    search_hot_idle_s: int = Field(
        default=86_400, ge=0, le=31_536_000, validation_alias="SEARCH_HOT_IDLE_S"
    )
    # The OpenAI provider (docs/search.md). OPENAI_BASE_URL points the SDK elsewhere (the stand-in).
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")
    openai_embedding_model: str = Field(
        default="text-embedding-3-small",
        min_length=1,
        max_length=200,
        validation_alias="OPENAI_EMBEDDING_MODEL",
    )
    # Needed only for a model not in neanelu.search.openai_provider.KNOWN_DIMENSIONS.
    openai_embedding_dimension: int | None = Field(
        default=None, ge=1, le=16_000, validation_alias="OPENAI_EMBEDDING_DIMENSION"
    )
    openai_timeout_s: float = Field(default=60.0, gt=0, le=600, validation_alias="OPENAI_TIMEOUT_S")
    # How long an embedding job waits between two polls of its batches (it is off the worker
    # meanwhile: the job is deferred, not sleeping).
    openai_batch_poll_s: float = Field(
        default=60.0, ge=0.05, le=3600, validation_alias="OPENAI_BATCH_POLL_S"
    )
    # Submissions of one request (the first, retries of failed lines, resubmissions after expiry).
    openai_batch_max_attempts: int = Field(
        default=3, ge=1, le=20, validation_alias="OPENAI_BATCH_MAX_ATTEMPTS"
    )
    # Inputs (products) per embeddings request in a batch file; the API allows 2,048.
    openai_batch_request_inputs: int = Field(
        default=512, ge=1, le=2048, validation_alias="OPENAI_BATCH_REQUEST_INPUTS"
    )

    @property
    def embedding_provider(self) -> Literal["local", "openai"]:
        if self.search_provider is not None:
            return self.search_provider
        return "openai" if self.openai_api_key is not None else "local"

    @property
    def docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.mode is Mode.LOCAL

    @field_validator(
        "shopify_api_secret_previous",
        "shopify_base_url",
        "postgres_url",
        "postgres_owner_url",
        "redis_url",
        "openai_api_key",
        "openai_base_url",
        "openai_embedding_dimension",
        "search_provider",
        "encryption_keys_previous",
        "otel_exporter_otlp_endpoint",
        "api_docs",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # .env.example ships optional variables as `NAME=`: that means "not set", never an empty
        # value (an empty previous secret would be an HMAC key anyone can sign with).
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("shopify_scopes", "search_metafields", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator("metrics_host")
    @classmethod
    def _host_is_an_address(cls, value: str) -> str:
        if any(c.isspace() for c in value) or "/" in value:
            raise ValueError("must be a host name or an IP address to bind, such as 127.0.0.1")
        return value

    @field_validator("encryption_key_256")
    @classmethod
    def _key_is_256_bits(cls, value: SecretStr) -> SecretStr:
        decode_key(value.get_secret_value())
        return value

    @field_validator("encryption_keys_previous")
    @classmethod
    def _previous_keys_decode(cls, value: SecretStr | None) -> SecretStr | None:
        previous_keys(value)
        return value

    @model_validator(mode="after")
    def _openai_provider_has_a_key(self) -> Settings:
        if self.search_provider == "openai" and self.openai_api_key is None:
            raise ValueError("SEARCH_PROVIDER=openai needs OPENAI_API_KEY")
        return self

    @model_validator(mode="after")
    def _no_placeholders_outside_local(self) -> Settings:
        if self.mode is Mode.LOCAL:
            return self
        checks: dict[str, str | None] = {
            "SHOPIFY_API_KEY": self.shopify_api_key,
            "SHOPIFY_API_SECRET": self.shopify_api_secret.get_secret_value(),
            "POSTGRES_URL": self.postgres_url,
            "REDIS_URL": self.redis_url,
            "APP_HOST": self.app_host,
        }
        for name, value in checks.items():
            if value is None or value.strip().lower() in PLACEHOLDERS or "neanelu-local" in value:
                raise ValueError(f"{name} must be set to a real value when NEANELU_MODE=production")
        secrets = {"SHOPIFY_API_SECRET": self.shopify_api_secret}
        if self.shopify_api_secret_previous is not None:
            secrets["SHOPIFY_API_SECRET_PREVIOUS"] = self.shopify_api_secret_previous
        for name, secret in secrets.items():
            _check_app_secret(name, secret.get_secret_value())
        _check_encryption_key(decode_key(self.encryption_key_256.get_secret_value()))
        if not self.app_host.startswith("https://"):
            raise ValueError("APP_HOST must be an https:// URL in production")
        if (
            self.openai_base_url is not None
            and not self.openai_base_url.startswith("https://")
            and self.mode is Mode.PRODUCTION
        ):
            # The key travels in every request's Authorization header.
            raise ValueError("OPENAI_BASE_URL must be an https:// URL in production")
        if self.shopify_base_url is not None and self.mode is Mode.PRODUCTION:
            raise ValueError(
                "SHOPIFY_BASE_URL is for development and staging against the emulator; unset it in"
                " production"
            )
        return self


def _check_app_secret(name: str, secret: str) -> None:
    text = secret.strip()
    if text.lower() in PLACEHOLDERS or text in KNOWN_SECRETS or "neanelu-local" in text:
        raise ValueError(f"{name} is a placeholder or a published test secret")
    if len(text) < MIN_SECRET_LENGTH:
        raise ValueError(
            f"{name} is shorter than a Shopify app secret ({MIN_SECRET_LENGTH} characters)"
        )


def _check_encryption_key(key: bytes) -> None:
    if key == LOCAL_ENCRYPTION_KEY:
        raise ValueError("ENCRYPTION_KEY_256 must not be the local development key in production")
    if len(set(key)) < MIN_KEY_DISTINCT_BYTES:
        raise ValueError(
            "ENCRYPTION_KEY_256 is not a random key (too few distinct bytes): generate one"
        )


def decode_key(text: str) -> bytes:
    """A 256-bit key given as base64 (44 chars) or hex (64 chars)."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error) as exc:
        raise ValueError("ENCRYPTION_KEY_256 must be 32 bytes as base64 or hex") from exc
    if len(key) != 32:
        raise ValueError("ENCRYPTION_KEY_256 must be 32 bytes as base64 or hex")
    return key


def previous_keys(value: SecretStr | None) -> list[tuple[str, bytes]]:
    """`ENCRYPTION_KEYS_PREVIOUS`: comma-separated `id:key` or bare `key` entries, newest first,
    as (id, key) pairs; the id is empty where the entry gave none."""
    if value is None:
        return []
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(value.get_secret_value().split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        key_id, sep, text = entry.partition(":")
        if not sep:
            key_id, text = "", entry
        try:
            material = decode_key(text)
        except ValueError:
            # The message names the entry's position, never its text (it is a key).
            raise ValueError(
                f"entry {position} is not a 32-byte base64 or hex key (id:key,id:key)"
            ) from None
        keys.append((key_id.strip(), material))
    return keys


ENV_FILE_VARIABLE = "NEANELU_ENV_FILE"


def load_settings(**overrides: object) -> Settings:
    """Build the settings once; a bad value becomes one line that names the variable.

    NEANELU_ENV_FILE names more env files (comma-separated), read after `.env` and `.env.local`:
    in containers, the secrets files the OpenBAO agent renders on a tmpfs, so that no secret passes
    through the container's configuration (`docker inspect`) or an image layer. The environment
    still wins over every file.
    """
    extra = [p.strip() for p in os.environ.get(ENV_FILE_VARIABLE, "").split(",") if p.strip()]
    for path in extra:
        if not os.path.isfile(path):
            raise SettingsError(
                f"invalid configuration: {ENV_FILE_VARIABLE}: {path} is not a readable file"
            )
    if extra:
        overrides.setdefault("_env_file", (".env", ".env.local", *extra))
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "settings"
        field = Settings.model_fields.get(loc)
        name = field.validation_alias if field is not None and field.validation_alias else loc
        message = str(err["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid configuration: {str(name).upper()}: {message}") from None
