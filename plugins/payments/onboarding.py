"""The organiser's payments page, ``/manage/payments/`` on the tenant's host: the Stripe account's status,
connecting one through Stripe's hosted onboarding, and the payment settings form.

Connecting creates an Express account on the platform's Stripe (one per tenant, whatever the number of
clicks: see :func:`plugins.payments.accounts.ensure_account`), links it to the tenant and commits before
sending the organiser to Stripe, so that an account Stripe made is never forgotten. Stripe sends them back
to ``stripe/return``, which asks Stripe for the account's status, or to ``stripe/refresh`` when the link was
used or expired, which makes a new one. When Stripe cannot be reached the answer is a 503 page; nothing is
half done, and the same button works again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe
import structlog
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from werkzeug.wrappers import Response

from bilten_core import audit
from bilten_core.auth.authorize import has_permission, require_permission
from bilten_core.auth.identity import current_identity
from bilten_core.db import db
from bilten_core.errors import RETRY_AFTER_SECONDS
from bilten_core.secret_settings import mask
from bilten_core.tenancy.context import current_tenant, current_tenant_or_none
from bilten_core.tenant_settings import InvalidSettings, update_settings
from plugins.payments.accounts import (
    AccountTaken,
    account_of,
    ensure_account,
    onboarding_complete,
    onboarding_link,
    refresh_account,
)
from plugins.payments.models import StripeAccount
from plugins.payments.payment_settings import NAMESPACE, PaymentSettings, payment_settings, paypal_secret
from plugins.payments.permissions import PAYMENTS_MANAGE, PAYMENTS_VIEW
from plugins.payments.settings_form import ABSORB, PASS_ON, offered_providers, read_form, refused_fields
from plugins.payments.stripe_client import StripeNotConfigured

log = structlog.get_logger("bilten.payments.onboarding")
blueprint = Blueprint("payments_settings", __name__, url_prefix="/manage/payments", template_folder="templates")

STRIPE_UNAVAILABLE = (stripe.StripeError, StripeNotConfigured)
INVALID = 422
NOT_CONNECTED, INCOMPLETE, CHARGES_ENABLED, PAYOUTS_ENABLED = (
    "not_connected", "incomplete", "charges_enabled", "payouts_enabled",
)
STATUS_LABELS = {
    NOT_CONNECTED: lazy_gettext("Not connected"),
    INCOMPLETE: lazy_gettext("Onboarding incomplete"),
    CHARGES_ENABLED: lazy_gettext("Charges enabled, payouts not yet"),
    PAYOUTS_ENABLED: lazy_gettext("Charges and payouts enabled"),
}


@dataclass(frozen=True)
class StripeStatus:
    """The tenant's Stripe account as last reported by Stripe, ready to show."""

    state: str
    account_id: str | None = None
    charges_enabled: bool = False
    payouts_enabled: bool = False
    details_submitted: bool = False

    @property
    def label(self) -> str:
        return str(STATUS_LABELS[self.state])


def stripe_status(account: StripeAccount | None) -> StripeStatus:
    if account is None:
        return StripeStatus(NOT_CONNECTED)
    if not onboarding_complete(account):
        state = INCOMPLETE
    else:
        state = PAYOUTS_ENABLED if account.payouts_enabled else CHARGES_ENABLED
    return StripeStatus(state, account.stripe_account_id, account.charges_enabled, account.payouts_enabled,
                        account.details_submitted)


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # account status and CSRF tokens: no shared or back-button caches
    return response


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


def _may(permission: str) -> bool:
    return has_permission(current_identity(), permission, current_tenant_or_none())


def _form_values(settings: PaymentSettings) -> dict[str, Any]:
    return {
        "providers": settings.enabled_providers,
        "fees": PASS_ON if settings.pass_fees_to_buyer else ABSORB,
        "paypal_client_id": settings.paypal_client_id or "",
        "paypal_webhook_id": settings.paypal_webhook_id or "",
    }


def _page(values: dict[str, Any] | None = None, errors: dict[str, list[str]] | None = None,
          status: int = 200) -> tuple[str, int]:
    settings = payment_settings()
    offered = offered_providers()
    titles = {provider.name: str(provider.title) for provider in offered}
    return render_template(
        "payments/settings_index.html",
        stripe=stripe_status(account_of(current_tenant())),
        may_manage=_may(PAYMENTS_MANAGE),
        may_manage_orders=_may("orders.manage"),
        offered=offered,
        values=values or _form_values(settings),
        enabled_titles=[titles.get(name, name) for name in settings.enabled_providers],
        pass_fees_to_buyer=settings.pass_fees_to_buyer,
        paypal_client_id=settings.paypal_client_id,
        paypal_webhook_id=settings.paypal_webhook_id,
        paypal_secret_mask=mask(paypal_secret()),
        errors=errors or {},
        absorb=ABSORB,
        pass_on=PASS_ON,
    ), status


def _unavailable(exc: Exception, *, checking: bool = False) -> tuple[str, int, dict[str, str]]:
    """The 503 page for a Stripe that cannot be asked; the caller has rolled back."""
    db.session.rollback()
    log.warning("payments.stripe_unavailable", error=type(exc).__name__, detail=str(exc)[:200])
    return render_template(
        "payments/connect_unavailable.html",
        not_configured=isinstance(exc, StripeNotConfigured),
        checking=checking,
    ), 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}


def _back_here() -> Response:
    return redirect(url_for("payments_settings.index"), 303)


@blueprint.get("/")
@require_permission(PAYMENTS_VIEW)
def index() -> Any:
    return _page()


@blueprint.post("/")
@require_permission(PAYMENTS_MANAGE)
def save_settings() -> Any:
    form = read_form(request.form, payment_settings())
    values = {
        "providers": form.changes["enabled_providers"],
        "fees": request.form.get("fees", ""),
        **{name: request.form.get(name, "") for name in ("paypal_client_id", "paypal_webhook_id")},
    }
    if form.errors:
        return _page(values, form.errors, INVALID)
    try:
        update_settings(NAMESPACE, form.changes)
    except InvalidSettings as exc:
        db.session.rollback()
        return _page(values, refused_fields(exc), INVALID)
    db.session.commit()
    flash(_("The payment settings were saved."))
    return _back_here()


@blueprint.post("/stripe/connect")
@require_permission(PAYMENTS_MANAGE)
def connect() -> Any:
    tenant = current_tenant()
    try:
        account, linked = ensure_account(tenant)
        if linked:
            audit.record("payments.stripe_account.connected", "stripe_account", account.stripe_account_id,
                         changes={"stripe_account_id": [None, account.stripe_account_id]})
            # Kept before going to Stripe: if the link below fails, the next try continues with this account.
            db.session.commit()
        elif onboarding_complete(account):
            flash(_("Your Stripe account is already connected."))
            return _back_here()
        url = _new_link(account)
    except AccountTaken:
        db.session.rollback()
        abort(409)
    except STRIPE_UNAVAILABLE as exc:
        return _unavailable(exc)
    return redirect(url, 303)


@blueprint.get("/stripe/return")
@require_permission(PAYMENTS_MANAGE)
def stripe_return() -> Any:
    tenant = current_tenant()
    try:
        refreshed = refresh_account(tenant)
    except STRIPE_UNAVAILABLE as exc:
        return _unavailable(exc, checking=True)
    if refreshed is None:
        return _back_here()
    account, changed = refreshed
    if changed:
        audit.record("payments.stripe_account.status_changed", "stripe_account", account.stripe_account_id,
                     changes=changed)
    complete = onboarding_complete(account)
    db.session.commit()
    if complete:
        flash(_("Your Stripe account is connected and can take card payments."))
    else:
        flash(_("Stripe still needs some details before you can take card payments. Continue when you are ready."))
    return _back_here()


@blueprint.get("/stripe/refresh")
@require_permission(PAYMENTS_MANAGE)
def stripe_refresh() -> Any:
    account = account_of(current_tenant())
    if account is None or onboarding_complete(account):
        return _back_here()
    try:
        url = _new_link(account)
    except STRIPE_UNAVAILABLE as exc:
        return _unavailable(exc)
    return redirect(url, 303)


def _new_link(account: StripeAccount) -> str:
    # Absolute addresses on the host the organiser is signed in on, where their session is.
    return onboarding_link(
        account,
        return_url=url_for("payments_settings.stripe_return", _external=True),
        refresh_url=url_for("payments_settings.stripe_refresh", _external=True),
    )
