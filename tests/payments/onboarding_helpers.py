"""Pointing the app at the fake Stripe for the onboarding tests, and reading back what the fake holds."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from pydantic import SecretStr

from plugins.payments.stripe_settings import EXTENSION, StripeSettings
from tests.payments.stripe_fake import StripeFake


def use_fake_stripe(app: Flask, fake: StripeFake, monkeypatch: pytest.MonkeyPatch, **options: Any) -> None:
    """Make ``app`` talk to ``fake`` with the platform's key (``options`` override the client's settings)."""
    settings: dict[str, Any] = {"secret_key": SecretStr(fake.secret_key), "api_base": fake.base_url,
                                "timeout_seconds": 10, **options}
    monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(**settings))


def accounts_at(fake: StripeFake) -> list[dict[str, Any]]:
    """The connected accounts the fake Stripe holds."""
    with fake.lock:
        return [dict(stored.body) for stored in fake.objects.values() if stored.body["object"] == "account"]
