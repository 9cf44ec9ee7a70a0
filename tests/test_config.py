"""Settings: TOML files overridden by the environment, secrets only from the environment."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from bilten_core.config import ConfigError, load_settings

SERVERS = {"database_url": "postgresql://db.example/bilten", "redis_url": "redis://cache.example/0"}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No settings from the caller's environment leak into a test."""
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "BILTEN_SECRET_KEY", "BILTEN_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BILTEN_ENV", "development")
    return monkeypatch


@pytest.fixture
def config_dir(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    clean_env.setenv("BILTEN_CONFIG_DIR", str(tmp_path))
    return tmp_path


def test_production_refuses_the_default_secret_and_says_why(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BILTEN_ENV", "production")
    with pytest.raises(ConfigError) as refused:
        load_settings(**SERVERS)
    message = str(refused.value)
    assert "refusing to start in production" in message
    assert "SECRET_KEY" in message
    assert "at least 32 characters" in message


def test_production_refuses_a_short_secret(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BILTEN_ENV", "production")
    clean_env.setenv("SECRET_KEY", "too-short")
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(**SERVERS)


def test_production_starts_with_a_real_secret_and_servers(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BILTEN_ENV", "production")
    secret = secrets.token_urlsafe(48)
    clean_env.setenv("SECRET_KEY", secret)
    settings = load_settings(**SERVERS)
    assert settings.is_production
    assert settings.secret_key.get_secret_value() == secret


def test_production_refuses_to_start_without_servers(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("BILTEN_ENV", "production")
    clean_env.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    with pytest.raises(ConfigError, match="DATABASE_URL and REDIS_URL"):
        load_settings()


def test_development_runs_with_the_default_secret(clean_env: pytest.MonkeyPatch) -> None:
    assert not load_settings(**SERVERS).is_production


@pytest.mark.parametrize(
    ("toml", "key"),
    [('secret_key = "hunter2hunter2"', "secret_key"), ('[mail]\nsmtp_password = "hunter2"', "smtp_password")],
)
def test_a_secret_in_a_toml_file_is_refused(config_dir: Path, toml: str, key: str) -> None:
    (config_dir / "default.toml").write_text(toml + "\n")
    with pytest.raises(ConfigError) as refused:
        load_settings(**SERVERS)
    assert str(config_dir / "default.toml") in str(refused.value)
    assert f"'{key}' is a secret" in str(refused.value)


def test_the_environment_file_overrides_the_default_file(config_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    (config_dir / "default.toml").write_text('[tenancy]\nplatform_domain = "default.example"\ncache_ttl = 7.0\n')
    (config_dir / "test.toml").write_text('[tenancy]\nplatform_domain = "test.example"\n')
    assert load_settings(**SERVERS).tenancy.platform_domain == "default.example"

    clean_env.setenv("BILTEN_ENV", "test")
    settings = load_settings(**SERVERS)
    assert settings.tenancy.platform_domain == "test.example"
    assert settings.tenancy.cache_ttl == 7.0


def test_environment_variables_override_toml(config_dir: Path, clean_env: pytest.MonkeyPatch) -> None:
    (config_dir / "default.toml").write_text(
        'log_level = "INFO"\n[tenancy]\nplatform_domain = "toml.example"\ncache_ttl = 7.0\n'
    )
    assert load_settings(**SERVERS).tenancy.platform_domain == "toml.example"

    clean_env.setenv("BILTEN_TENANCY__PLATFORM_DOMAIN", "env.example")
    clean_env.setenv("BILTEN_LOG_LEVEL", "DEBUG")
    settings = load_settings(**SERVERS)
    assert settings.tenancy.platform_domain == "env.example"
    assert settings.log_level == "DEBUG"
    # Overriding one key of a section keeps the section's other keys from the file.
    assert settings.tenancy.cache_ttl == 7.0


def test_an_unknown_environment_override_is_a_configuration_error(
    config_dir: Path, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("BILTEN_TENANCY__CACHE_TTL", "not a number")
    with pytest.raises(ConfigError, match="cache_ttl"):
        load_settings(**SERVERS)


@pytest.mark.parametrize(
    "given",
    [
        "postgres://app:pw@db.example:5432/bilten",
        "postgresql://app:pw@db.example:5432/bilten",
        "postgresql+psycopg://app:pw@db.example:5432/bilten",
    ],
)
def test_database_url_is_normalized_to_the_psycopg_driver(clean_env: pytest.MonkeyPatch, given: str) -> None:
    clean_env.setenv("DATABASE_URL", given)
    settings = load_settings(redis_url=SERVERS["redis_url"])
    assert settings.database_url == "postgresql+psycopg://app:pw@db.example:5432/bilten"
    # The nested section the app reads follows the conventional variable.
    assert settings.database.url == settings.database_url


def test_redis_url_and_secret_key_come_from_the_conventional_variables(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REDIS_URL", "redis://cache.example:6380/3")
    clean_env.setenv("SECRET_KEY", "from-the-environment")
    settings = load_settings(database_url=SERVERS["database_url"])
    assert settings.redis.url == "redis://cache.example:6380/3"
    assert settings.secret_key.get_secret_value() == "from-the-environment"
