"""Stripe's credentials and client options, from the environment only (``STRIPE_*``).

They are secrets, which the kernel reads from the environment only, and its settings refuse sections
they do not know; so the plugin reads its own, once, when the app is built.
"""

from __future__ import annotations

from typing import Literal

from flask import Flask, current_app
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

EXTENSION = "payments.stripe"


class StripeSettings(BaseSettings):
    """``STRIPE_SECRET_KEY``, ``STRIPE_WEBHOOK_SECRET``, ``STRIPE_CONNECT_WEBHOOK_SECRET``, ``STRIPE_API_BASE``, ..."""

    model_config = SettingsConfigDict(env_prefix="STRIPE_", extra="ignore")

    secret_key: SecretStr | None = None
    # Each endpoint has its own signing secret: the platform's events and the connected accounts' events.
    webhook_secret: SecretStr | None = None
    connect_webhook_secret: SecretStr | None = None
    # Only tests point the client elsewhere (a local fake of Stripe's API).
    api_base: str | None = None
    timeout_seconds: float = 20.0
    max_network_retries: int = 2
    # How old a webhook's signature may be, in seconds (Stripe's own default).
    webhook_tolerance: int = 300
    # "elements": cards are typed into Stripe's Payment Element on our page (needs the publishable key).
    checkout_mode: Literal["hosted", "elements"] = "hosted"
    publishable_key: str | None = None
    # Stripe requires Stripe.js to be loaded from Stripe; only tests point it elsewhere.
    js_url: str = "https://js.stripe.com/v3/"


def configure(app: Flask) -> None:
    app.extensions[EXTENSION] = StripeSettings()


def stripe_settings() -> StripeSettings:
    settings: StripeSettings = current_app.extensions[EXTENSION]
    return settings
