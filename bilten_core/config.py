"""One typed settings object, read from ``config/*.toml`` and overridden by the environment.

Order of precedence (highest first): keyword arguments to :func:`load_settings`, environment
variables (``BILTEN_<SECTION>__<KEY>``, plus the conventional ``DATABASE_URL``, ``REDIS_URL`` and
``SECRET_KEY``), ``config/<env>.toml``, ``config/default.toml``. Secrets are read from the
environment only: a secret found in a TOML file is a configuration error.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRET = "insecure-development-secret-do-not-use-in-production"  # noqa: S105
SECRET_FIELDS = {"secret_key", "smtp_password", "twilio_auth_token"}

Environment = Literal["development", "production", "test"]


class ConfigError(RuntimeError):
    """The settings cannot be used; the message says why and what to change."""


class DatabaseSettings(BaseModel):
    url: str | None = None
    pool_size: int = 10
    max_overflow: int = 10
    # Recycling bounds how many tenants' catalog caches one backend accumulates.
    pool_recycle: int = 900
    # A pooled connection unused this long is tested before use; busy ones are not (a round trip each).
    ping_after_idle: float = 10.0
    echo: bool = False


class RedisSettings(BaseModel):
    url: str | None = None


class TenancySettings(BaseModel):
    platform_domain: str = "localhost"
    # Other names the platform answers to (a load balancer's health checks use an address).
    platform_aliases: list[str] = Field(default_factory=lambda: ["127.0.0.1", "[::1]"])
    cache_ttl: float = 30.0
    cache_size: int = 10_000
    reserved_slugs: list[str] = Field(default_factory=list)
    deletion_grace_hours: float = 24.0 * 30
    migrate_parallelism: int = 4


class PluginSettings(BaseModel):
    # Explicit allow-list: an installed plugin that is not named here is never loaded.
    enabled: list[str] = Field(default_factory=list)


class MailSettings(BaseModel):
    backend: Literal["smtp", "outbox"] = "smtp"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0
    default_sender: str = "noreply@localhost"
    outbox_dir: str = "mail"


class ApiSettings(BaseModel):
    max_body_bytes: int = 1_048_576


class JobSettings(BaseModel):
    queues: list[str] = Field(default_factory=lambda: ["default", "mail", "media", "webhooks"])
    outbox_sweep_seconds: int = 30
    outbox_max_attempts: int = 10


class ThrottleSettings(BaseModel):
    """Abuse protection: per-IP rate limits (limits' syntax, e.g. "20/minute") and account lockout."""

    # Where the per-IP counters live; empty means the kernel's Redis.
    storage_url: str | None = None
    # How many proxies in front of the app set X-Forwarded-For; 0 trusts no header (the client
    # address is the TCP peer). Behind one load balancer, set 1: otherwise every visitor shares the
    # balancer's address and one visitor's limit is everyone's.
    trusted_proxies: int = 0
    sign_in_per_ip: str = "20/minute"
    refresh_per_ip: str = "60/minute"
    account_mail_per_ip: str = "10/hour"
    reset_per_ip: str = "20/hour"
    second_factor_per_ip: str = "20/minute"
    # Per typed address, whatever the client's: an attacker with many addresses still gets nowhere.
    sign_in_per_account: str = "30/hour"
    account_mail_per_account: str = "5/hour"
    # Failed sign-ins of one address within the window before it is locked for lockout_seconds.
    max_failures: int = 5
    failure_window_seconds: int = 900
    # The first free_failures cost nothing; each later one makes the address wait before its next
    # attempt: failure_delay_seconds, doubling, at most max_failure_delay_seconds (0 turns it off).
    free_failures: int = 2
    failure_delay_seconds: int = 2
    max_failure_delay_seconds: int = 60
    # Each lock within lockout_memory_seconds of the previous one lasts twice as long, capped.
    lockout_seconds: int = 900
    max_lockout_seconds: int = 24 * 3600
    lockout_memory_seconds: int = 24 * 3600


class SmsSettings(BaseModel):
    """Text messages for the SMS second factor: "console" logs them (development), "twilio" sends them."""

    backend: Literal["console", "twilio"] = "console"
    twilio_base_url: str = "https://api.twilio.com"
    twilio_account_sid: str | None = None
    # From the environment only (BILTEN_SMS__TWILIO_AUTH_TOKEN), like every secret.
    twilio_auth_token: SecretStr | None = None
    # A sender number in E.164, or a messaging service (MG...) that picks one.
    twilio_from_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    timeout_seconds: float = 10.0
    # Codes sent to one account within the window (enrolment and sign-in together).
    max_sends_per_window: int = 3
    send_window_seconds: int = 600


class AuditSettings(BaseModel):
    # Days the audit logs and the platform security log keep an entry; older ones are purged daily.
    # The database refuses to purge anything younger than 30 days whatever this says.
    retention_days: int = Field(default=400, ge=30)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BILTEN_", env_nested_delimiter="__", extra="forbid", frozen=False
    )

    env: Environment = "development"
    secret_key: SecretStr = Field(
        default=SecretStr(DEFAULT_SECRET), validation_alias=AliasChoices("SECRET_KEY", "BILTEN_SECRET_KEY")
    )
    instance_path: str = Field(default=str(PROJECT_ROOT / "instance"))
    log_level: str = "INFO"
    log_json: bool = True
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "BILTEN_DATABASE_URL")
    )
    redis_url: str | None = Field(default=None, validation_alias=AliasChoices("REDIS_URL", "BILTEN_REDIS_URL"))
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    tenancy: TenancySettings = Field(default_factory=TenancySettings)
    plugins: PluginSettings = Field(default_factory=PluginSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)

    @field_validator("database_url")
    @classmethod
    def _sqlalchemy_driver(cls, url: str | None) -> str | None:
        # Accept the conventional postgres:// spelling and pick the psycopg 3 driver.
        if url and url.startswith(("postgres://", "postgresql://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def instance_dir(self, *parts: str) -> Path:
        path = Path(self.instance_path, *parts)
        path.mkdir(parents=True, exist_ok=True)
        return path


class _TomlSource(PydanticBaseSettingsSource):
    """``config/default.toml`` deep-merged with ``config/<env>.toml``; refuses secrets."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        config_dir = Path(os.environ.get("BILTEN_CONFIG_DIR", PROJECT_ROOT / "config"))
        env = os.environ.get("BILTEN_ENV", "development")
        data: dict[str, Any] = {}
        for name in ("default.toml", f"{env}.toml"):
            path = config_dir / name
            if path.exists():
                with path.open("rb") as fh:
                    loaded = tomllib.load(fh)
                _refuse_secrets(loaded, path)
                _deep_merge(data, loaded)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _refuse_secrets(data: dict[str, Any], path: Path) -> None:
    for key, value in data.items():
        if key in SECRET_FIELDS:
            raise ConfigError(f"{path}: '{key}' is a secret; set it in the environment, not in a file")
        if isinstance(value, dict):
            _refuse_secrets(value, path)


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def load_settings(**overrides: Any) -> Settings:
    """Read the settings and check that they are safe to run with; raise :class:`ConfigError` if not."""
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {exc}") from exc
    # Nested sections take the conventional top-level variables too.
    settings.database.url = settings.database_url or settings.database.url
    settings.redis.url = settings.redis_url or settings.redis.url
    if settings.is_production:
        secret = settings.secret_key.get_secret_value()
        if secret == DEFAULT_SECRET or len(secret) < 32:
            raise ConfigError(
                "refusing to start in production with the default or a short SECRET_KEY: "
                "set SECRET_KEY in the environment to a random string of at least 32 characters "
                "(for example: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if not settings.database.url or not settings.redis.url:
            raise ConfigError("production needs DATABASE_URL and REDIS_URL set in the environment")
    return settings
