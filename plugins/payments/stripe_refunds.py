"""Refunds of card payments: asked of Stripe for ticketing's refunds, and taken from Stripe's refund events."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import stripe
import structlog
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.models import PaymentAttempt
from plugins.payments.platform_fees import platform_fees
from plugins.payments.settlement import metadata_value
from plugins.payments.stripe_checkout import STRIPE, SUCCEEDED
from plugins.payments.stripe_client import StripeNotConfigured, stripe_client
from plugins.ticketing import refunds
from plugins.ticketing.orders import Order

log = structlog.get_logger("bilten.payments.refunds")


def paid_attempt(order_id: str) -> PaymentAttempt | None:
    """The attempt that paid the order."""
    return db.session.scalar(
        sa.select(PaymentAttempt).where(PaymentAttempt.order_id == order_id, PaymentAttempt.status == SUCCEEDED)
    )


def refund_card_payment(order: Order, amount_minor: int, reference: str) -> str | None:
    """Ask Stripe to pay back ``amount_minor`` of the order's payment; returns Stripe's refund id.

    ``reference`` (ticketing's refund id) is the idempotency key, so a retry is the same refund.
    """
    if order.payment_provider != STRIPE:
        return None
    attempt = paid_attempt(order.id)
    if attempt is None:
        raise ApiError(409, "payment_not_found", _("No card payment of this order was found to refund."))
    try:
        refund: Any = stripe_client().v1.refunds.create(
            {"payment_intent": attempt.payment_reference, "amount": amount_minor,
             "refund_application_fee": platform_fees().refund_platform_fee,
             "metadata": {"bilten_refund_id": reference, "bilten_order_id": order.id}},
            options={"stripe_account": attempt.account, "idempotency_key": f"bilten-refund-{reference}"},
        )
    except stripe.InvalidRequestError as exc:
        raise ApiError(409, "refund_refused", _("Stripe refused this refund."),
                       {"provider_message": exc.user_message or str(exc)}) from None
    except (stripe.StripeError, StripeNotConfigured) as exc:
        log.warning("refund.stripe_unavailable", order_id=order.id, error=str(exc))
        raise ApiError(503, "provider_unavailable", _("Stripe could not be reached; try the refund again.")) from None
    return str(refund.id)


def apply_refund(refund: Any) -> str:
    """A refund event: settle the refund Bilten asked for, or record one made in Stripe's dashboard."""
    if metadata_value(refund, "bilten_attempt_id"):
        return "own_refund"  # a late or double payment paid back by settlement, not a refund of the order
    attempt = db.session.scalar(
        sa.select(PaymentAttempt).where(PaymentAttempt.payment_reference == str(refund.payment_intent))
    )
    if attempt is None:
        return "unknown_payment"
    # Bilten's own refund commits holding the order's row: waiting for it here makes that refund visible,
    # however early Stripe's event arrives.
    order = db.session.scalar(sa.select(Order).where(Order.id == attempt.order_id).with_for_update())
    status = str(refund.status)
    if refunds.settle_provider_refund(str(refund.id), status) is not None:
        return "refund_" + status
    if order is None or attempt.status != SUCCEEDED or status != refunds.SUCCEEDED:
        return "ignored"
    try:
        refunds.refund(order, amount_minor=int(refund.amount), reference=str(refund.id),
                       reason=_("Refunded in Stripe"))
    except ApiError as exc:
        log.warning("refund.not_recorded", order_id=order.id, refund=str(refund.id), code=exc.error_code)
        return "not_recordable"
    return "recorded"
