"""The payment settings form: what staff send, checked and turned into changes for ``update_settings``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from bilten_core.secret_settings import SECRET_MAX_LENGTH
from bilten_core.tenant_settings import InvalidSettings
from plugins.payments.payment_settings import PaymentSettings
from plugins.ticketing.payments import FREE, PaymentProvider, providers

TEXT_MAX = 200
ABSORB, PASS_ON = "absorb", "pass"
PAYPAL_TEXT_FIELDS = ("paypal_client_id", "paypal_webhook_id")


@dataclass
class SettingsForm:
    """The changes a submitted form asks for, or what is wrong with it, by field."""

    changes: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def refuse(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)


def offered_providers() -> list[PaymentProvider]:
    """The registered providers a tenant can offer or withhold; free orders need none, so ``free`` is not one."""
    return [provider for name, provider in providers().items() if name != FREE]


def read_form(form: MultiDict[str, str], current: PaymentSettings) -> SettingsForm:
    """Check the submitted form against what the page offered; a blank secret keeps the stored one."""
    result = SettingsForm()
    offered = [provider.name for provider in offered_providers()]
    chosen = form.getlist("providers")
    if any(name not in offered for name in chosen):
        result.refuse("providers", _("Choose payment methods from the list."))
    # Names the page did not offer (a provider whose plugin is not loaded now) stay as they were.
    kept = [name for name in current.enabled_providers if name not in offered]
    result.changes["enabled_providers"] = [name for name in offered if name in chosen] + kept
    fees = form.get("fees", "")
    if fees not in (ABSORB, PASS_ON):
        result.refuse("fees", _("Choose who pays the fees."))
    result.changes["pass_fees_to_buyer"] = fees == PASS_ON
    for name in PAYPAL_TEXT_FIELDS:
        text = form.get(name, "").strip()
        if len(text) > TEXT_MAX:
            result.refuse(name, _("At most %(count)d characters.", count=TEXT_MAX))
        elif any(ord(char) < 32 or ord(char) == 127 for char in text):
            result.refuse(name, _("Enter it as one line of plain text, as PayPal shows it."))
        result.changes[name] = text or None
    secret = form.get("paypal_client_secret", "")
    if form.get("clear_paypal_client_secret") == "yes":
        result.changes["paypal_client_secret"] = None
    elif len(secret) > SECRET_MAX_LENGTH:
        result.refuse("paypal_client_secret", _("At most %(count)d characters.", count=SECRET_MAX_LENGTH))
    elif secret.strip():
        result.changes["paypal_client_secret"] = secret.strip()
    return result


def refused_fields(exc: InvalidSettings) -> dict[str, list[str]]:
    """The settings' own refusals, by form field (``enabled_providers.0`` is the providers' field)."""
    errors: dict[str, list[str]] = {}
    for name, message in exc.errors.items():
        top = name.split(".")[0]
        errors.setdefault("providers" if top == "enabled_providers" else top, []).append(message)
    return errors
