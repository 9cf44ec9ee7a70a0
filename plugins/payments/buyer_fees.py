"""The card fees a buyer pays on top of the tickets when the organiser passes them on, as ticketing shows them.

They come as two lines: the service fee (the platform's fee with the tax on it) and the card payment fee
(the provider's estimate, grossed up so that the organiser nets the ticket total; see
:mod:`plugins.payments.fees`). Stripe's hosted page lists the same two lines. An order that was paid
shows the fees its payment was charged with, whatever the policy says today; an order still to be paid
shows those of its open payment, else what the policy would charge now.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import lazy_gettext

from bilten_core.db import db
from plugins.payments import fees
from plugins.payments.models import PaymentAttempt
from plugins.payments.payment_settings import payment_settings
from plugins.payments.platform_fees import platform_fees
from plugins.payments.stripe_checkout import OPEN, STRIPE, SUCCEEDED
from plugins.ticketing import orders
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import FeeLine

SERVICE_FEE = lazy_gettext("Service fee")
CARD_PAYMENT_FEE = lazy_gettext("Card payment fee")


def fee_lines(
    buyer_fee_minor: int, application_fee_minor: int, fee_tax_minor: int, fee_tax_rate_bp: int
) -> list[FeeLine]:
    """The lines of ``buyer_fee_minor`` paid on top: the platform's part (with its tax), then the provider's."""
    if buyer_fee_minor <= 0:
        return []
    service = min(application_fee_minor, buyer_fee_minor)
    lines = []
    if service:
        tax = min(fee_tax_minor, service)
        lines.append(FeeLine(SERVICE_FEE, service, tax, fee_tax_rate_bp if tax else 0))
    if buyer_fee_minor > service:
        lines.append(FeeLine(CARD_PAYMENT_FEE, buyer_fee_minor - service))
    return lines


def breakdown_lines(breakdown: fees.FeeBreakdown) -> list[FeeLine]:
    return fee_lines(breakdown.buyer_fee_minor, breakdown.application_fee_minor, breakdown.platform_fee_tax_minor,
                     platform_fees().platform_fee_tax_rate_bp)


def quote(provider: str, total_minor: int, currency: str) -> list[FeeLine] | None:
    """What paying ``total_minor`` by card adds today; None for other providers or when the organiser absorbs fees."""
    if provider != STRIPE or not payment_settings().pass_fees_to_buyer:
        return None
    policy = platform_fees().policy(pass_to_buyer=True)
    try:
        breakdown = fees.breakdown(total_minor, currency, policy)
    except fees.FeeError:  # a currency the fee rules cannot price is refused when the payment starts
        return None
    return breakdown_lines(breakdown)


def _charged_attempt(order: Order) -> PaymentAttempt | None:
    """The card payment whose fees the order shows: the one that paid it, else its newest open one."""
    wanted = SUCCEEDED if order.paid_at is not None else OPEN
    return db.session.scalar(
        sa.select(PaymentAttempt)
        .where(PaymentAttempt.order_id == order.id, PaymentAttempt.provider == STRIPE, PaymentAttempt.status == wanted)
        .order_by(PaymentAttempt.attempt.desc()).limit(1)
    )


def fees_of(order: Order) -> list[FeeLine] | None:
    if order.payment_provider != STRIPE:
        return None
    attempt = _charged_attempt(order)
    if attempt is not None:
        return fee_lines(attempt.amount_minor - order.total_minor, attempt.application_fee_minor,
                         attempt.fee_tax_minor, attempt.fee_tax_rate_bp)
    if order.status in (orders.AWAITING_PAYMENT, orders.HELD):
        return quote(STRIPE, order.total_minor, order.currency)
    return None
