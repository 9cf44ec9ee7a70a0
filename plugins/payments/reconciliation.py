"""Reconciliation: Stripe's word against our orders, repaired where they differ, with a report.

Webhooks can be lost for longer than Stripe retries them, and a process can die between Stripe's
confirmation and our commit. So a job asks Stripe about every attempt still open and applies what
it says (a payment made but never issued is issued, or paid back when its places are gone), and
flags the opposite case, an order issued as paid by card with no card payment behind it, for staff.
Running it twice does nothing the second time.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
import stripe
import structlog

from bilten_core import audit
from bilten_core.db import db
from plugins.payments import settlement
from plugins.payments.models import PaymentAttempt
from plugins.payments.paypal_reconciliation import reconcile_paypal
from plugins.payments.stripe_checkout import OPEN, STRIPE, SUCCEEDED
from plugins.payments.stripe_client import StripeNotConfigured, stripe_client
from plugins.ticketing import inventory, orders
from plugins.ticketing.orders import Order, OrderHistory

log = structlog.get_logger("bilten.payments.reconciliation")

FLAG_ISSUED_NOT_PAID = "issued_not_paid"
# Orders older than this are settled history: the job does not go back further.
LOOKBACK = timedelta(days=30)


@dataclass
class ReconciliationReport:
    checked: int = 0
    issued: int = 0
    refunded: int = 0
    expired: int = 0
    flagged: int = 0
    unreachable: int = 0
    details: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reconcile() -> ReconciliationReport:
    """Compare the current tenant's recent card payments with Stripe and repair what differs; commits each repair."""
    report = ReconciliationReport()
    since = inventory.db_now() - LOOKBACK
    open_ids = list(db.session.scalars(
        sa.select(PaymentAttempt.id)
        .where(PaymentAttempt.provider == STRIPE, PaymentAttempt.status == OPEN, PaymentAttempt.created_at >= since)
        .order_by(PaymentAttempt.created_at)
    ))
    for attempt_id in open_ids:
        report.checked += 1
        attempt = db.session.get(PaymentAttempt, attempt_id)
        if attempt is None or attempt.provider_reference is None:
            continue
        try:
            # A Checkout Session or, for the embedded Payment Element, a PaymentIntent.
            outcome = settlement.apply_current(attempt)
            db.session.commit()
        except (stripe.StripeError, StripeNotConfigured) as exc:
            db.session.rollback()
            report.unreachable += 1
            log.warning("reconcile.stripe_unavailable", attempt_id=attempt_id, error=str(exc)[:200])
            continue
        if outcome in (settlement.PAID, settlement.PAID_LATE):
            report.issued += 1
        elif outcome.startswith("refunded"):
            report.refunded += 1
        elif outcome == settlement.SESSION_EXPIRED:
            report.expired += 1
        if outcome not in (settlement.UNPAID, settlement.SESSION_EXPIRED):
            report.details.append({"attempt_id": attempt_id, "order_id": attempt.order_id, "outcome": outcome})
    reconcile_paypal(report)
    _flag_issued_not_paid(report, since)
    audit.record("payments.reconciled", "tenant", None, {k: v for k, v in report.as_dict().items() if k != "details"})
    db.session.commit()
    log.info("reconcile.done", **{k: v for k, v in report.as_dict().items() if k != "details"})
    return report


def _flag_issued_not_paid(report: ReconciliationReport, since: Any) -> None:
    paid_by_card = sa.select(PaymentAttempt.id).where(
        PaymentAttempt.order_id == Order.id, PaymentAttempt.status == SUCCEEDED
    ).exists()
    flagged_before = sa.select(OrderHistory.id).where(
        OrderHistory.order_id == Order.id, OrderHistory.action == FLAG_ISSUED_NOT_PAID
    ).exists()
    suspects = db.session.scalars(
        sa.select(Order).where(
            Order.payment_provider == STRIPE,
            Order.status.in_((orders.PAID, orders.PARTIALLY_REFUNDED)),
            Order.created_at >= since,
            ~paid_by_card,
            ~flagged_before,
        )
    ).all()
    for order in suspects:
        orders.note(order, FLAG_ISSUED_NOT_PAID, {"reason": "no card payment succeeded for this order"})
        report.flagged += 1
        report.details.append({"order_id": order.id, "outcome": FLAG_ISSUED_NOT_PAID})


def expire_lapsed_sessions() -> int:
    """Expire the open sessions (cancel the open intents) of orders whose deadline passed; commits each.

    Returns how many. A buyer who paid at the very last moment makes Stripe refuse the expiry: the session is then
    applied as it is, which issues the tickets if the places are still free or pays the money back.
    """
    now = inventory.db_now()
    lapsed = list(db.session.scalars(
        sa.select(PaymentAttempt.id)
        .join(Order, Order.id == PaymentAttempt.order_id)
        .where(PaymentAttempt.provider == STRIPE, PaymentAttempt.status == OPEN, Order.payment_due_at <= now)
    ))
    expired = 0
    for attempt_id in lapsed:
        attempt = db.session.get(PaymentAttempt, attempt_id)
        if attempt is None or attempt.provider_reference is None:
            continue
        try:
            # No longer open means paid or expired already: what it is now is applied below.
            with contextlib.suppress(stripe.InvalidRequestError):
                _close_at_stripe(attempt)
            outcome = settlement.apply_current(attempt)
            db.session.commit()
        except (stripe.StripeError, StripeNotConfigured) as exc:
            db.session.rollback()
            log.warning("expire.stripe_unavailable", attempt_id=attempt_id, error=str(exc)[:200])
            continue
        if outcome == settlement.SESSION_EXPIRED:
            expired += 1
    return expired


def _close_at_stripe(attempt: PaymentAttempt) -> None:
    """Expire the attempt's Checkout Session, or cancel the embedded element's PaymentIntent."""
    options: Any = {"stripe_account": attempt.account, "idempotency_key": f"bilten-attempt-{attempt.id}-expire"}
    reference = str(attempt.provider_reference)
    if settlement.is_intent_attempt(attempt):
        stripe_client().v1.payment_intents.cancel(reference, {"cancellation_reason": "abandoned"}, options=options)
    else:
        stripe_client().v1.checkout.sessions.expire(reference, options=options)
