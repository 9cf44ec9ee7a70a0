"""The Apple Wallet pass certificate, from the environment only (``PASSKIT_*``).

The pass-signing key is a secret, which the kernel reads from the environment only; so the plugin
reads its own settings once, when the app is built, like the payments plugin does for Stripe. Passes
are offered only when all five are set.
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTENSION = "scanner.passkit"


class PassKitSettings(BaseSettings):
    """``PASSKIT_CERT_PATH``, ``PASSKIT_KEY_PATH``, ``PASSKIT_WWDR_PATH`` (PEM files), ``PASSKIT_PASS_TYPE_ID``,
    ``PASSKIT_TEAM_ID``."""

    model_config = SettingsConfigDict(env_prefix="PASSKIT_", extra="ignore")

    cert_path: Path | None = None
    key_path: Path | None = None
    wwdr_path: Path | None = None
    pass_type_id: str | None = None
    team_id: str | None = None

    @property
    def configured(self) -> bool:
        return all((self.cert_path, self.key_path, self.wwdr_path, self.pass_type_id, self.team_id))


def configure(app: Flask) -> None:
    app.extensions[EXTENSION] = PassKitSettings()


def passkit_settings() -> PassKitSettings | None:
    """The pass certificate's settings, or None when the operator has not configured passes."""
    settings: PassKitSettings | None = current_app.extensions.get(EXTENSION)
    return settings if settings is not None and settings.configured else None
