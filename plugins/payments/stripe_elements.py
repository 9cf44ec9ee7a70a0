"""Card payments on Stripe's embedded Payment Element, charged directly on the organiser's connected account.

With ``STRIPE_CHECKOUT_MODE=elements`` (and ``STRIPE_PUBLISHABLE_KEY`` set) the buyer pays on our own
page, ``/payments/orders/<id>/card``, where Stripe.js shows the card form in Stripe's frame: card data
still never reaches our servers. Each PaymentIntent is one :class:`PaymentAttempt` whose references are
the intent's id; its idempotency key is built from the order and the attempt's number, so a retry
after a timeout gets the intent Stripe already made. A declined card leaves the intent open for the
buyer's next try; only a succeeded intent settles the order (``settlement.apply_intent``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import stripe

from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant
from plugins.payments.accounts import account_of
from plugins.payments.models import PaymentAttempt
from plugins.payments.platform_fees import platform_fees
from plugins.payments.settlement import fetch_intent, is_intent_attempt
from plugins.payments.stripe_checkout import OPEN, STRIPE, NotPayable, fee_breakdown, latest_attempt
from plugins.payments.stripe_client import stripe_client
from plugins.payments.stripe_settings import stripe_settings
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order


def elements_enabled() -> bool:
    """Whether card buyers pay on the embedded Payment Element rather than on Stripe's hosted page."""
    settings = stripe_settings()
    return settings.checkout_mode == "elements" and bool(settings.publishable_key)


def open_intent(order: Order, now: datetime) -> tuple[PaymentAttempt, Any]:
    """The attempt and PaymentIntent the buyer pays with, making a new one when none is open; commits.

    The order's row is locked first, so two tabs opening at once share one intent. Raises
    :class:`NotPayable`, or ``stripe.StripeError`` (nothing kept: the next try repeats the same key).
    """
    db.session.refresh(order, with_for_update=True)
    if order.status != orders.AWAITING_PAYMENT or (order.payment_due_at is not None and order.payment_due_at <= now):
        db.session.rollback()
        raise NotPayable(order.id)
    latest = latest_attempt(order.id)
    if latest is not None and latest.status == OPEN and is_intent_attempt(latest):
        db.session.rollback()
        return latest, fetch_intent(latest)
    account = account_of(current_tenant())
    if account is None or not account.charges_enabled:
        db.session.rollback()
        raise NotPayable(order.id)
    breakdown = fee_breakdown(order)
    attempt = PaymentAttempt(
        id=str(uuid.uuid4()), order_id=order.id, provider=STRIPE, attempt=latest.attempt + 1 if latest else 1,
        status=OPEN, amount_minor=breakdown.buyer_total_minor, currency=order.currency,
        application_fee_minor=breakdown.application_fee_minor, account=account.stripe_account_id,
        fee_tax_minor=breakdown.platform_fee_tax_minor, fee_tax_rate_bp=platform_fees().platform_fee_tax_rate_bp,
    )
    params = _intent_params(order, attempt)
    try:
        intent: Any = stripe_client().v1.payment_intents.create(
            params,
            options={"stripe_account": account.stripe_account_id,
                     "idempotency_key": f"bilten-order-{order.id}-attempt-{attempt.attempt}-intent"},
        )
    except stripe.StripeError:
        db.session.rollback()
        raise
    attempt.provider_reference = attempt.payment_reference = str(intent.id)
    db.session.add(attempt)
    orders.note(order, "payment_started", {"provider": STRIPE, "attempt": attempt.attempt, "payment": intent.id})
    db.session.commit()
    return attempt, intent


def _intent_params(order: Order, attempt: PaymentAttempt) -> dict[str, Any]:
    event = db.session.get(Event, order.event_id)
    title = event.title if event is not None else order.code
    params: dict[str, Any] = {
        "amount": attempt.amount_minor,
        "currency": order.currency.lower(),
        "automatic_payment_methods": {"enabled": True},
        "description": f"{title} · {order.code}",
        "metadata": {"bilten_order_id": order.id, "bilten_attempt_id": attempt.id,
                     "bilten_tenant_id": current_tenant().id},
    }
    if attempt.application_fee_minor:
        params["application_fee_amount"] = attempt.application_fee_minor
    return params
