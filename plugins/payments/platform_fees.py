"""The platform's fee on card payments and the provider's fee estimate, from the environment (``PAYMENTS_*``).

The operator sets them for the whole platform; each organiser chooses only whether the buyer pays
them on top (the ``payments`` settings' ``pass_fees_to_buyer``).
"""

from __future__ import annotations

from flask import Flask, current_app
from pydantic_settings import BaseSettings, SettingsConfigDict

from plugins.payments.fees import FeePolicy

EXTENSION = "payments.platform_fees"


class PlatformFees(BaseSettings):
    """``PAYMENTS_PLATFORM_FEE_PERCENT_BP``, ``PAYMENTS_PLATFORM_FEE_FIXED_MINOR``, ...; percentages in basis points."""

    model_config = SettingsConfigDict(env_prefix="PAYMENTS_", extra="ignore")

    platform_fee_percent_bp: int = 0
    platform_fee_fixed_minor: int = 0
    platform_fee_tax_rate_bp: int = 0
    # Stripe's standard European card pricing, as an estimate for the breakdown (1.5 % + 0.25).
    provider_fee_percent_bp: int = 150
    provider_fee_fixed_minor: int = 25
    # Whether a refund also gives back the platform's fee on the refunded part.
    refund_platform_fee: bool = False

    def policy(self, *, pass_to_buyer: bool) -> FeePolicy:
        return FeePolicy(
            platform_percent_bp=self.platform_fee_percent_bp,
            platform_fixed_minor=self.platform_fee_fixed_minor,
            provider_percent_bp=self.provider_fee_percent_bp,
            provider_fixed_minor=self.provider_fee_fixed_minor,
            pass_to_buyer=pass_to_buyer,
            fee_tax_rate_bp=self.platform_fee_tax_rate_bp,
        )


def configure(app: Flask) -> None:
    fees = PlatformFees()
    fees.policy(pass_to_buyer=False)  # refuses a bad value when the app starts, not at the first sale
    app.extensions[EXTENSION] = fees


def platform_fees() -> PlatformFees:
    fees: PlatformFees = current_app.extensions[EXTENSION]
    return fees
