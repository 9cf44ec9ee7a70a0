"""The official Stripe client, built from the app's Stripe settings."""

from __future__ import annotations

import stripe

from plugins.payments.stripe_settings import StripeSettings, stripe_settings


class StripeNotConfigured(RuntimeError):
    """No secret key is set (``STRIPE_SECRET_KEY``)."""


def make_client(settings: StripeSettings) -> stripe.StripeClient:
    if settings.secret_key is None:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set")
    base = settings.api_base
    return stripe.StripeClient(
        settings.secret_key.get_secret_value(),
        # A retry repeats a GET, or a POST under the same idempotency key, so it can never act twice.
        max_network_retries=settings.max_network_retries,
        base_addresses={"api": base, "connect": base, "files": base} if base else {},
        http_client=stripe.RequestsClient(timeout=settings.timeout_seconds),
    )


def stripe_client() -> stripe.StripeClient:
    return make_client(stripe_settings())
