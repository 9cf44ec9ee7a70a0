"""Where PayPal's REST API is and how long a request to it may take (``PAYPAL_*``, from the environment).

The credentials are each organiser's own (tenant settings, see ``payment_settings``); only the
address and the timeout are the platform's.
"""

from __future__ import annotations

from flask import Flask, current_app
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTENSION = "payments.paypal"
LIVE_API = "https://api-m.paypal.com"


class PayPalSettings(BaseSettings):
    """``PAYPAL_API_BASE`` (the sandbox, ``https://api-m.sandbox.paypal.com``, or a local fake) and
    ``PAYPAL_TIMEOUT_SECONDS``."""

    model_config = SettingsConfigDict(env_prefix="PAYPAL_", extra="ignore")

    api_base: str = LIVE_API
    timeout_seconds: float = 20.0


def configure(app: Flask) -> None:
    app.extensions[EXTENSION] = PayPalSettings()


def paypal_settings() -> PayPalSettings:
    settings: PayPalSettings = current_app.extensions[EXTENSION]
    return settings
