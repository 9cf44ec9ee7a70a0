"""Paying an order with PayPal (Orders v2, intent CAPTURE) in the organiser's own PayPal account.

As with cards, placing the order makes no call to PayPal: the buyer is sent to
``/payments/orders/<id>/paypal``, which opens (or reopens) a PayPal order and redirects to its
approval page. Each PayPal order is one :class:`PaymentAttempt` whose id is derived from the order
and the attempt's number, as is the ``PayPal-Request-Id``: a retry after a lost answer gets the
PayPal order already made, carrying the same attempt id in ``custom_id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from flask import url_for
from flask_babel import lazy_gettext

from bilten_core.db import db
from plugins.payments.fees import major_units
from plugins.payments.models import PaymentAttempt
from plugins.payments.payment_settings import payment_settings, provider_enabled
from plugins.payments.paypal_client import PayPalError, PayPalUnavailable, paypal_client
from plugins.payments.stripe_checkout import OPEN, NotPayable, latest_attempt
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import PaymentStart

PAYPAL = "paypal"
# Attempt ids are uuid5 of the order and attempt number in this namespace, so a retried create names the same one.
ATTEMPT_NAMESPACE = uuid.UUID("6f1c3b52-4d0e-5c8a-9a57-3e2f0b7d9c41")
DESCRIPTION_MAX = 127


class PayPalProvider:
    name = PAYPAL
    title = lazy_gettext("PayPal")

    def accepts(self, total_minor: int) -> bool:
        if total_minor <= 0 or not provider_enabled(PAYPAL):
            return False
        # Both credentials entered (the secret stays sealed: checkout pages need not open it).
        settings = payment_settings()
        return bool(settings.paypal_client_id) and settings.paypal_client_secret is not None

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        # No call to PayPal inside the order's transaction: the PayPal order opens when the buyer arrives.
        return PaymentStart(paid=False, redirect_url=url_for("payments_paypal.pay", order_id=order_id, _external=True))


def attempt_id_for(order_id: str, number: int) -> str:
    return str(uuid.uuid5(ATTEMPT_NAMESPACE, f"{order_id}/{number}"))


def open_paypal_order(order: Order, now: datetime) -> PaymentAttempt:
    """The attempt whose PayPal order the buyer approves, opening a new one when there is none; commits.

    The order's row is locked first, so two tabs share one PayPal order. Raises :class:`NotPayable`,
    or :class:`PayPalUnavailable` / :class:`PayPalError` (nothing kept: the next try repeats the request id).
    """
    db.session.refresh(order, with_for_update=True)
    if order.status != orders.AWAITING_PAYMENT or (order.payment_due_at is not None and order.payment_due_at <= now):
        db.session.rollback()
        raise NotPayable(order.id)
    latest = latest_attempt(order.id)
    if latest is not None and latest.status == OPEN and latest.redirect_url:
        db.session.rollback()
        return latest
    number = latest.attempt + 1 if latest else 1
    try:
        client = paypal_client()
        attempt = PaymentAttempt(
            id=attempt_id_for(order.id, number), order_id=order.id, provider=PAYPAL, attempt=number, status=OPEN,
            amount_minor=order.total_minor, currency=order.currency, application_fee_minor=0,
            account=client.credentials.client_id,
        )
        created = client.create_order(_order_body(order, attempt),
                                      request_id=f"bilten-order-{order.id}-attempt-{number}-create")
    except (PayPalUnavailable, PayPalError):
        db.session.rollback()
        raise
    approve = next((link.get("href") for link in created.get("links", [])
                    if link.get("rel") in ("payer-action", "approve")), None)
    if not approve:
        db.session.rollback()
        raise PayPalUnavailable(f"PayPal order {created.get('id')} has no approval link")
    attempt.provider_reference = str(created["id"])
    attempt.redirect_url = str(approve)
    db.session.add(attempt)
    orders.note(order, "payment_started", {"provider": PAYPAL, "attempt": number, "paypal_order": created["id"]})
    db.session.commit()
    return attempt


def _order_body(order: Order, attempt: PaymentAttempt) -> dict[str, Any]:
    event = db.session.get(Event, order.event_id)
    title = event.title if event is not None else order.code
    room = DESCRIPTION_MAX - len(f" · {order.code}")
    if len(title) > room:
        title = title[: room - 1] + "…"
    return {
        "intent": "CAPTURE",
        "purchase_units": [{
            "reference_id": order.id,
            "custom_id": attempt.id,
            "invoice_id": f"{order.code}-{attempt.attempt}",
            "description": f"{title} · {order.code}",
            "amount": {"currency_code": order.currency.upper(),
                       "value": str(major_units(order.total_minor, order.currency))},
        }],
        "payment_source": {"paypal": {"experience_context": {
            "user_action": "PAY_NOW",
            "shipping_preference": "NO_SHIPPING",
            "return_url": url_for("payments_paypal.returned", order_id=order.id, _external=True),
            "cancel_url": url_for("payments_paypal.cancelled", order_id=order.id, _external=True),
        }}},
    }
