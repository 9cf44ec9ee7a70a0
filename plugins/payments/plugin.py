"""Hook implementations of the payments plugin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bilten_core import PluginMeta, hookimpl
from bilten_core.migrations import MigrationSource

PLUGIN = PluginMeta(
    title="Payments",
    description="Card payments through each organiser's own Stripe account, and the platform's fees.",
    default_enabled=True,
)
HERE = Path(__file__).parent
__all__ = ["PLUGIN"]


@hookimpl
def register_migrations() -> MigrationSource:
    return MigrationSource(tenant=HERE / "migrations" / "tenant", shared=HERE / "migrations" / "shared")


@hookimpl(specname="app_configured")
def read_stripe_settings(app: Any) -> None:
    from plugins.payments import platform_fees, stripe_settings

    stripe_settings.configure(app)
    platform_fees.configure(app)


@hookimpl(specname="register_platform_blueprints")
def register_stripe_webhooks(app: Any) -> list[Any]:
    from plugins.payments.webhooks import blueprint

    return [blueprint]


# --- Payment settings and Stripe Connect onboarding -----------------------------------------------


@hookimpl(specname="register_settings")
def register_payment_settings() -> list[Any]:
    from plugins.payments.payment_settings import SPEC

    return [SPEC]


@hookimpl(specname="register_permissions")
def register_payment_permissions() -> list[Any]:
    from plugins.payments.permissions import permissions

    return permissions()


@hookimpl(specname="register_roles")
def grant_payment_permissions() -> list[Any]:
    from plugins.payments.permissions import role_grants

    return role_grants()


@hookimpl(specname="register_blueprints")
def register_payment_settings_pages(app: Any) -> list[Any]:
    from plugins.payments.onboarding import blueprint

    return [blueprint]


@hookimpl(specname="site_navigation")
def payment_settings_navigation() -> list[Any]:
    """A link to the payments page for those who may see it."""
    from flask_babel import lazy_gettext

    from bilten_core.auth.authorize import has_permission
    from bilten_core.auth.identity import current_identity
    from bilten_core.tenancy.context import current_tenant_or_none
    from bilten_core.web import NavLink
    from plugins.payments.permissions import PAYMENTS_VIEW

    if not has_permission(current_identity(), PAYMENTS_VIEW, current_tenant_or_none()):
        return []
    return [NavLink(str(lazy_gettext("Payments")), "/manage/payments/", order=810)]


@hookimpl(specname="register_payment_providers")
def offer_card_payments() -> list[Any]:
    from plugins.payments.stripe_checkout import StripeCheckoutProvider

    return [StripeCheckoutProvider()]


@hookimpl(specname="refund_payment")
def refund_card_payment(order: Any, amount_minor: int, reference: str) -> str | None:
    from plugins.payments.stripe_refunds import refund_card_payment

    return refund_card_payment(order, amount_minor, reference)


@hookimpl(specname="register_blueprints")
def register_pay_pages(app: Any) -> list[Any]:
    from plugins.payments.pay_routes import blueprint

    return [blueprint]


# --- Fraud checks at checkout ---------------------------------------------------------------------


@hookimpl(specname="register_settings")
def register_fraud_settings() -> list[Any]:
    from plugins.payments.fraud_settings import SETTINGS

    return [SETTINGS]


@hookimpl(specname="assess_checkout_risk")
def check_fraud_rules(attempt: Any) -> Any:
    from plugins.payments.fraud import assess

    return assess(attempt)


@hookimpl(specname="register_blueprints")
def register_fraud_page(app: Any) -> list[Any]:
    from plugins.payments.fraud_routes import blueprint

    return [blueprint]


@hookimpl(specname="register_jobs")
def register_payment_jobs() -> list[Any]:
    from plugins.payments.jobs import expire_lapsed_sessions, reconcile

    return [expire_lapsed_sessions, reconcile]


@hookimpl(specname="register_schedules")
def register_payment_schedules() -> list[Any]:
    from plugins.payments.jobs import EVERY_MINUTE, EVERY_QUARTER_HOUR

    return [EVERY_MINUTE, EVERY_QUARTER_HOUR]


@hookimpl(specname="handle_event")
def mail_automatic_refunds(event: Any) -> None:
    from plugins.payments.refund_mail import handle_outbox_event

    handle_outbox_event(event)


@hookimpl(specname="register_cli_commands")
def register_payment_commands(cli: Any) -> None:
    from plugins.payments.cli import payments_cli

    cli.add_command(payments_cli)


# --- Bank transfers and paying at the door ---------------------------------------------------------


@hookimpl(specname="register_payment_providers")
def offer_pay_at_the_door() -> list[Any]:
    from plugins.payments.door import DoorProvider

    return [DoorProvider()]


@hookimpl(specname="register_settings")
def register_bank_details() -> list[Any]:
    from plugins.payments.offline_settings import SPEC

    return [SPEC]


@hookimpl(specname="register_blueprints")
def register_bank_import_page(app: Any) -> list[Any]:
    from plugins.payments.bank_import_routes import blueprint

    return [blueprint]


@hookimpl(specname="register_api")
def register_bank_import_api(app: Any) -> list[Any]:
    from plugins.payments.bank_import_api import blueprint

    return [blueprint]


# --- PayPal (Orders v2) in each organiser's own PayPal account -----------------------------------


@hookimpl(specname="app_configured")
def read_paypal_settings(app: Any) -> None:
    from plugins.payments import paypal_settings

    paypal_settings.configure(app)


@hookimpl(specname="register_payment_providers")
def offer_paypal() -> list[Any]:
    from plugins.payments.paypal_checkout import PayPalProvider

    return [PayPalProvider()]


@hookimpl(specname="register_blueprints")
def register_paypal_pages(app: Any) -> list[Any]:
    from plugins.payments.paypal_routes import blueprint as pay_pages
    from plugins.payments.paypal_webhooks import blueprint as webhook

    return [pay_pages, webhook]


@hookimpl(specname="refund_payment")
def refund_paypal_payment(order: Any, amount_minor: int, reference: str) -> str | None:
    from plugins.payments.paypal_refunds import refund_paypal_payment

    return refund_paypal_payment(order, amount_minor, reference)


# --- Disputes and financial reports ----------------------------------------------------------------


@hookimpl(specname="register_blueprints")
def register_report_pages(app: Any) -> list[Any]:
    from plugins.payments.report_routes import blueprint

    return [blueprint]


@hookimpl(specname="register_api")
def register_report_api(app: Any) -> list[Any]:
    from plugins.payments.report_api import blueprint

    return [blueprint]


@hookimpl(specname="order_history_labels")
def label_payment_history() -> dict[str, Any]:
    from plugins.payments.history_labels import LABELS

    return LABELS


@hookimpl(specname="order_history_labels")
def label_card_signals() -> dict[str, Any]:
    from plugins.payments.card_signals import HISTORY_LABELS

    return HISTORY_LABELS


# --- Stripe's embedded Payment Element -------------------------------------------------------------


@hookimpl(specname="register_blueprints")
def register_card_element_pages(app: Any) -> list[Any]:
    from plugins.payments.elements_routes import blueprint

    return [blueprint]


# --- What buyers are told: fees on top, how to pay offline -------------------------------------------


@hookimpl(specname="quote_payment_fees")
def quote_card_fees(provider: str, total_minor: int, currency: str) -> list[Any] | None:
    from plugins.payments.buyer_fees import quote

    return quote(provider, total_minor, currency)


@hookimpl(specname="order_fees")
def card_fees_of_order(order: Any) -> list[Any] | None:
    from plugins.payments.buyer_fees import fees_of

    return fees_of(order)


@hookimpl(specname="payment_instructions")
def offline_payment_instructions(order: Any) -> Any:
    from plugins.payments.payment_instructions import instructions_for

    return instructions_for(order)


@hookimpl(specname="seed_demo_data")
def seed_demo_bank_details(tenant: Any) -> None:
    from plugins.payments.offline_settings import seed_demo_bank_details as seed

    seed()
