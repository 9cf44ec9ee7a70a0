"""Card payments on Stripe's hosted Checkout page, charged directly on the organiser's connected account.

Placing an order makes no call to Stripe: the order awaits payment until its reservation lapses, and
the buyer is sent to ``/payments/orders/<id>/pay``, which opens (or reopens) a Checkout Session. Each
session is one :class:`PaymentAttempt`; its idempotency key is built from the order and the attempt's
number, so a retry after a timeout gets the session Stripe already made instead of a second one.
Stripe keeps a session open for at least 30 minutes, longer than a reservation: the
``payments.expire_lapsed_sessions`` job expires it once the order's deadline passes.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import stripe
from flask import url_for
from flask_babel import lazy_gettext

from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant
from plugins.payments import fees
from plugins.payments.accounts import account_of
from plugins.payments.models import PaymentAttempt
from plugins.payments.payment_settings import payment_settings, provider_enabled
from plugins.payments.platform_fees import platform_fees
from plugins.payments.stripe_client import stripe_client
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import PaymentStart

STRIPE = "stripe"
OPEN, SUCCEEDED, FAILED, EXPIRED, REFUNDED = "open", "succeeded", "failed", "expired", "refunded"
# Stripe refuses a session that expires in less than 30 minutes; a minute more covers the request's trip.
SESSION_MIN_LIFETIME = timedelta(minutes=31)
SESSION_MAX_LIFETIME = timedelta(hours=23)


class NotPayable(Exception):
    """The order no longer awaits payment (paid, expired, cancelled)."""


class StripeCheckoutProvider:
    name = STRIPE
    title = lazy_gettext("Card (Stripe)")

    def accepts(self, total_minor: int) -> bool:
        if total_minor <= 0 or not provider_enabled(STRIPE):
            return False
        account = account_of(current_tenant())
        return account is not None and account.charges_enabled

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        # No call to Stripe inside the order's transaction: the session (or intent) opens when the buyer arrives.
        from plugins.payments.stripe_elements import elements_enabled  # it builds on this module

        page = "payments_elements.card" if elements_enabled() else "payments_pay.pay"
        return PaymentStart(paid=False, redirect_url=url_for(page, order_id=order_id, _external=True))


def fee_breakdown(order: Order) -> fees.FeeBreakdown:
    policy = platform_fees().policy(pass_to_buyer=payment_settings().pass_fees_to_buyer)
    return fees.breakdown(order.total_minor, order.currency, policy)


def latest_attempt(order_id: str) -> PaymentAttempt | None:
    return db.session.scalar(
        sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id).order_by(PaymentAttempt.attempt.desc())
    )


def open_session(order: Order, now: datetime) -> PaymentAttempt:
    """The attempt whose open session the buyer pays on, opening a new one when there is none; commits.

    The order's row is locked first, so two tabs opening at once share one session. Raises
    :class:`NotPayable`, or ``stripe.StripeError`` (nothing kept: the next try repeats the same key).
    """
    db.session.refresh(order, with_for_update=True)
    if order.status != orders.AWAITING_PAYMENT or (order.payment_due_at is not None and order.payment_due_at <= now):
        db.session.rollback()
        raise NotPayable(order.id)
    latest = latest_attempt(order.id)
    if latest is not None and latest.status == OPEN and latest.redirect_url:
        db.session.rollback()
        return latest
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
    try:
        session: Any = stripe_client().v1.checkout.sessions.create(
            _session_params(order, attempt, breakdown, now),
            options={"stripe_account": account.stripe_account_id,
                     "idempotency_key": f"bilten-order-{order.id}-attempt-{attempt.attempt}-session"},
        )
    except stripe.StripeError:
        db.session.rollback()
        raise
    attempt.provider_reference = session.id
    attempt.redirect_url = session.url
    db.session.add(attempt)
    orders.note(order, "payment_started", {"provider": STRIPE, "attempt": attempt.attempt, "session": session.id})
    db.session.commit()
    return attempt


def _session_params(
    order: Order, attempt: PaymentAttempt, breakdown: fees.FeeBreakdown, now: datetime
) -> dict[str, Any]:
    event = db.session.get(Event, order.event_id)
    title = event.title if event is not None else order.code
    currency = order.currency.lower()
    items: list[dict[str, Any]] = [{
        "quantity": 1,
        "price_data": {"currency": currency, "unit_amount": order.total_minor,
                       "product_data": {"name": f"{title} · {order.code}"}},
    }]
    from plugins.payments.buyer_fees import breakdown_lines  # it builds on this module

    for line in breakdown_lines(breakdown):  # the fees the buyer pays on top, as the order page lists them
        items.append({"quantity": 1, "price_data": {
            "currency": currency, "unit_amount": line.amount_minor, "product_data": {"name": str(line.label)},
        }})
    due = order.payment_due_at or now
    expires = min(max(due, now + SESSION_MIN_LIFETIME), now + SESSION_MAX_LIFETIME)
    metadata = {"bilten_order_id": order.id, "bilten_attempt_id": attempt.id, "bilten_tenant_id": current_tenant().id}
    intent: dict[str, Any] = {"metadata": metadata, "description": f"{title} · {order.code}"}
    if breakdown.application_fee_minor:
        intent["application_fee_amount"] = breakdown.application_fee_minor
    return {
        "mode": "payment",
        "line_items": items,
        "success_url": url_for("payments_pay.returned", order_id=order.id, _external=True)
        + "?session_id={CHECKOUT_SESSION_ID}",
        "cancel_url": url_for("payments_pay.pay", order_id=order.id, _external=True) + "?cancelled=1",
        "client_reference_id": order.id,
        "customer_email": order.email,
        "expires_at": int(expires.timestamp()),
        "metadata": metadata,
        "payment_intent_data": intent,
    }
