"""Reconciliation of PayPal payments: PayPal's word on every open PayPal attempt, applied.

A buyer may approve and never come back, a webhook may be lost, a process may die between the
capture and our commit. So the job asks PayPal about each attempt still open: an approved order is
captured, a captured one settled (or paid back), as the return and the webhooks would have done.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
import structlog

from bilten_core.db import db
from plugins.payments import settlement
from plugins.payments.models import PaymentAttempt
from plugins.payments.paypal_checkout import PAYPAL
from plugins.payments.paypal_client import PayPalError, PayPalUnavailable
from plugins.payments.paypal_settlement import settle_paypal_order
from plugins.payments.stripe_checkout import OPEN
from plugins.ticketing import inventory

if TYPE_CHECKING:
    from plugins.payments.reconciliation import ReconciliationReport

log = structlog.get_logger("bilten.payments.paypal_reconciliation")


def reconcile_paypal(report: ReconciliationReport) -> None:
    """Ask PayPal about the current tenant's open PayPal attempts and apply what it says; commits each."""
    from plugins.payments.reconciliation import LOOKBACK

    since = inventory.db_now() - LOOKBACK
    open_attempts = list(db.session.execute(
        sa.select(PaymentAttempt.id, PaymentAttempt.order_id, PaymentAttempt.provider_reference)
        .where(PaymentAttempt.provider == PAYPAL, PaymentAttempt.status == OPEN, PaymentAttempt.created_at >= since)
        .order_by(PaymentAttempt.created_at)
    ))
    for attempt_id, order_id, paypal_order_id in open_attempts:
        report.checked += 1
        if paypal_order_id is None:
            continue
        try:
            outcome = settle_paypal_order(paypal_order_id)
            db.session.commit()
        except (PayPalUnavailable, PayPalError) as exc:
            db.session.rollback()
            report.unreachable += 1
            log.warning("reconcile.paypal_unavailable", attempt_id=attempt_id, error=str(exc)[:200])
            continue
        if outcome in (settlement.PAID, settlement.PAID_LATE):
            report.issued += 1
        elif outcome.startswith("refunded"):
            report.refunded += 1
        if outcome not in (settlement.UNPAID, settlement.DUPLICATE):
            report.details.append({"attempt_id": attempt_id, "order_id": order_id, "provider": PAYPAL,
                                   "outcome": outcome})
