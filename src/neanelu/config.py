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

DEFAULT_SCOPES = ("read_products", "read_inventory", "read_locations")


class Mode(StrEnum):
    LOCAL = "local"
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
        default=SecretStr(base64.b64encode(b"neanelu-local-development-key-32").decode()),
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
    # Telemetry. OTEL_SDK_DISABLED is OpenTelemetry's own switch: no provider, no instrumentation.
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    # `auto`: JSON unless stderr is a terminal; `json` or `console` force one.
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="LOG_FORMAT"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", validation_alias="LOG_LEVEL"
    )
    # Each worker process serves /metrics here (0: not served); the API serves it on its own port.
    metrics_port: int = Field(default=9464, ge=0, le=65535, validation_alias="METRICS_PORT")

    @field_validator("shopify_scopes", mode="before")
    @classmethod
    def _split_scopes(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator("encryption_key_256")
    @classmethod
    def _key_is_256_bits(cls, value: SecretStr) -> SecretStr:
        decode_key(value.get_secret_value())
        return value

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
        if (
            self.encryption_key_256.get_secret_value()
            == Settings.model_fields["encryption_key_256"].default.get_secret_value()
        ):
            raise ValueError(
                "ENCRYPTION_KEY_256 must not be the local development key in production"
            )
        if not self.app_host.startswith("https://"):
            raise ValueError("APP_HOST must be an https:// URL in production")
        return self


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
