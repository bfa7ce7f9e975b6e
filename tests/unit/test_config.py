"""Settings: one line naming the variable, placeholders refused outside local mode."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from neanelu.config import Mode, SettingsError, load_settings

PRODUCTION = {
    "NEANELU_MODE": "production",
    "SHOPIFY_API_KEY": "real-client-id",
    "SHOPIFY_API_SECRET": "shpss_realsecret0123456789abcdef01234567",
    "POSTGRES_URL": "postgresql://app@db/neanelu",
    "REDIS_URL": "redis://cache:6379/0",
    "APP_HOST": "https://neanelu.example.com",
    "ENCRYPTION_KEY_256": base64.b64encode(bytes(range(32))).decode(),
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in (
        *PRODUCTION,
        "SHOPIFY_SCOPES",
        "DB_POOL_MAX",
        "SHOPIFY_API_SECRET_PREVIOUS",
        "NEANELU_ENV_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(str(tmp_path))  # no .env from the checkout


def test_local_defaults_start_without_configuration() -> None:
    settings = load_settings()
    assert settings.mode is Mode.LOCAL
    assert settings.postgres_url is None
    assert settings.shopify_scopes == ("read_products", "read_inventory", "read_locations")


def test_production_with_real_values_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in PRODUCTION.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("SHOPIFY_SCOPES", "read_products, read_inventory")
    settings = load_settings()
    assert settings.shopify_scopes == ("read_products", "read_inventory")
    assert settings.mode is Mode.PRODUCTION


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SHOPIFY_API_SECRET", "changeme"),
        ("SHOPIFY_API_KEY", ""),
        ("POSTGRES_URL", None),
        ("REDIS_URL", None),
        ("APP_HOST", "http://plain.example.com"),
        ("ENCRYPTION_KEY_256", "not-base64!"),
        ("ENCRYPTION_KEY_256", base64.b64encode(b"short").decode()),
        ("DB_POOL_MAX", "0"),
    ],
)
def test_bad_value_stops_startup_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str | None
) -> None:
    for key, val in PRODUCTION.items():
        monkeypatch.setenv(key, val)
    if value is None:
        monkeypatch.delenv(variable)
    else:
        monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert "\n" not in message
    assert "shpss_realsecret" not in message


def test_error_never_echoes_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENCRYPTION_KEY_256", "c2VjcmV0LWtleS10aGF0LWlzLXRvby1zaG9ydA==")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "c2VjcmV0" not in str(info.value)


LOCAL_KEY = b"neanelu-local-development-key-32"


def _production(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for key, value in {**PRODUCTION, **env}.items():
        monkeypatch.setenv(key, value)


def test_empty_optional_variables_are_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.env.example` ships `NAME=` lines: an empty previous secret is no secret at all."""
    for name in (
        "SHOPIFY_API_SECRET_PREVIOUS",
        "ENCRYPTION_KEYS_PREVIOUS",
        "OPENAI_API_KEY",
        "SHOPIFY_BASE_URL",
        "POSTGRES_URL",
        "REDIS_URL",
    ):
        monkeypatch.setenv(name, "  ")
    settings = load_settings()
    assert settings.shopify_api_secret_previous is None
    assert settings.encryption_keys_previous is None
    assert settings.openai_api_key is None
    assert settings.shopify_base_url is None
    assert settings.postgres_url is None
    assert settings.redis_url is None
    # And the same in production, where the example file is copied to.
    _production(monkeypatch, SHOPIFY_API_SECRET_PREVIOUS="")
    assert load_settings().shopify_api_secret_previous is None


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SHOPIFY_API_SECRET", "shpss_short", "shorter"),
        ("SHOPIFY_API_SECRET", "shpss_emulator_client_secret_0123456789", "published"),
        ("SHOPIFY_API_SECRET_PREVIOUS", "changeme", "placeholder"),
        ("SHOPIFY_API_SECRET_PREVIOUS", "x" * 12, "shorter"),
        ("SHOPIFY_API_SECRET_PREVIOUS", "neanelu-local-client-secret", "placeholder"),
        ("ENCRYPTION_KEY_256", LOCAL_KEY.hex(), "development key"),
        ("ENCRYPTION_KEY_256", base64.b64encode(LOCAL_KEY).decode() + " ", "development key"),
        ("ENCRYPTION_KEY_256", base64.b64encode(bytes(32)).decode(), "not a random key"),
        ("ENCRYPTION_KEY_256", ("ab" * 32), "not a random key"),
        ("SHOPIFY_BASE_URL", "http://127.0.0.1:9000", "development"),
    ],
)
def test_production_refuses_weak_or_known_values(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    _production(monkeypatch, **{variable: value})
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert variable in message
    assert says in message
    assert "\n" not in message
    assert value.strip() not in message


def test_bad_previous_encryption_key_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "ENCRYPTION_KEYS_PREVIOUS", f"v1:{base64.b64encode(bytes(range(32))).decode()},v2:oops"
    )
    with pytest.raises(SettingsError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("invalid configuration: ENCRYPTION_KEYS_PREVIOUS: entry 2")
    assert "\n" not in message
    assert "oops" not in message


def test_env_file_named_by_neanelu_env_file_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The OpenBAO agent's rendered secrets file: read after .env, below the environment."""
    rendered = tmp_path / "neanelu.env"
    rendered.write_text(
        "".join(f"{k}={v}\n" for k, v in PRODUCTION.items() if k != "REDIS_URL"),
        encoding="utf-8",
    )
    migrator = tmp_path / "migrator.env"
    migrator.write_text("POSTGRES_OWNER_URL=postgresql://owner:pw@db/neanelu\n", encoding="utf-8")
    monkeypatch.setenv("NEANELU_ENV_FILE", f"{rendered}, {migrator}")
    monkeypatch.setenv("REDIS_URL", "redis://from-environment:6379/0")
    settings = load_settings()
    assert settings.mode is Mode.PRODUCTION
    assert settings.shopify_api_secret.get_secret_value() == PRODUCTION["SHOPIFY_API_SECRET"]
    assert settings.redis_url == "redis://from-environment:6379/0"
    assert settings.postgres_owner_url == "postgresql://owner:pw@db/neanelu"


def test_missing_env_file_stops_startup_naming_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "not-rendered-yet.env"
    monkeypatch.setenv("NEANELU_ENV_FILE", str(missing))
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert str(err.value) == (
        f"invalid configuration: NEANELU_ENV_FILE: {missing} is not a readable file"
    )


def test_staging_keeps_every_production_check_but_may_point_at_an_emulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deployment drill runs the production image against the emulator: `staging`."""
    _production(monkeypatch, NEANELU_MODE="staging", SHOPIFY_BASE_URL="http://127.0.0.1:18500")
    settings = load_settings()
    assert settings.mode is Mode.STAGING
    assert settings.shopify_base_url == "http://127.0.0.1:18500"
    monkeypatch.setenv("SHOPIFY_API_SECRET", "shpss_short")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "SHOPIFY_API_SECRET" in str(info.value)
    assert "shorter" in str(info.value)


def test_the_openai_provider_is_chosen_by_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("SEARCH_PROVIDER", raising=False)
    assert load_settings().embedding_provider == "local"
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-provider-choice")
    chosen = load_settings()
    assert chosen.embedding_provider == "openai"
    assert "sk-test-provider-choice" not in repr(chosen)
    monkeypatch.setenv("SEARCH_PROVIDER", "local")
    assert load_settings().embedding_provider == "local"
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("SEARCH_PROVIDER", "openai")
    with pytest.raises(SettingsError, match="SEARCH_PROVIDER=openai needs OPENAI_API_KEY"):
        load_settings()


def test_production_sends_the_openai_key_over_tls_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PRODUCTION.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-production")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8765/v1")
    with pytest.raises(SettingsError, match="OPENAI_BASE_URL must be an https:// URL"):
        load_settings()
    monkeypatch.setenv("OPENAI_BASE_URL", "https://openai-proxy.example.com/v1")
    assert load_settings().openai_base_url == "https://openai-proxy.example.com/v1"
