"""A tenant's payment settings (namespace ``payments``): the providers offered at checkout, who pays the fees,
and the PayPal credentials the organiser enters.

Public: :func:`payment_settings`, :func:`provider_enabled` and :func:`paypal_secret`, each for the current
tenant. Staff change the settings on ``/manage/payments/`` or through ``PATCH /api/v1/settings/payments``.
"""

from __future__ import annotations

from typing import Annotated, cast

from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from bilten_core.secret_settings import SecretSetting, reveal_secret
from bilten_core.tenancy.context import current_tenant
from bilten_core.tenant_settings import SettingsSpec, get_settings

NAMESPACE = "payments"
MAX_PROVIDERS = 20
# Shaped like the names providers register under (``register_payment_providers``).
ProviderName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# One line of printable text: what PayPal's dashboard shows, and nothing JSONB cannot store (NUL).
PayPalText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")
]


class PaymentSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    enabled_providers: list[ProviderName] = Field(
        default_factory=lambda: ["stripe", "invoice"],
        max_length=MAX_PROVIDERS,
        description="The payment providers the tenant offers at checkout, by registered name.",
    )
    pass_fees_to_buyer: bool = Field(
        False, description="Add the platform's and the provider's fees to the buyer's total instead of absorbing them."
    )
    paypal_client_id: PayPalText | None = Field(None, description="The client id of the organiser's PayPal app.")
    paypal_client_secret: SecretSetting | None = None
    paypal_webhook_id: PayPalText | None = Field(None, description="The id of the PayPal webhook set up for Bilten.")

    @field_validator("enabled_providers")
    @classmethod
    def _each_once(cls, names: list[str]) -> list[str]:
        # The first mention keeps its place: the order is the order checkout offers them in.
        return list(dict.fromkeys(names))


SPEC = SettingsSpec(namespace=NAMESPACE, model=PaymentSettings, title=lazy_gettext("Payments"))


def payment_settings() -> PaymentSettings:
    """The current tenant's payment settings (the PayPal secret in its sealed form: see :func:`paypal_secret`)."""
    return cast(PaymentSettings, get_settings(NAMESPACE))


def provider_enabled(name: str) -> bool:
    """Whether the current tenant offers the payment provider registered as ``name`` at checkout."""
    return name in payment_settings().enabled_providers


def paypal_secret() -> str | None:
    """The current tenant's PayPal client secret in plain text, or None if unset.

    Only for handing to PayPal; never put it in a page, a response or a log.
    """
    return reveal_secret(current_tenant(), NAMESPACE, "paypal_client_secret")
