"""What a Checkout Session's (or an embedded element's PaymentIntent's) state means for its order:
issue the tickets, or pay the money back.

Stripe tells us about a payment three ways (the buyer's return to the success page, webhooks, the
reconciliation job), at least once each and in any order. All of them end here with the session (or intent) as
Stripe has it now, and the attempt's row lock makes the first one to arrive the only one that acts.
Nothing here commits: the caller commits the effect with its own record (the webhook's event row).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog

from bilten_core import outbox
from bilten_core.db import db
from plugins.payments.models import PaymentAttempt
from plugins.payments.stripe_checkout import EXPIRED, OPEN, REFUNDED, SUCCEEDED
from plugins.payments.stripe_client import stripe_client
from plugins.ticketing import checkout, orders
from plugins.ticketing.orders import Order

log = structlog.get_logger("bilten.payments.settlement")

# Stripe's ids say what they are: an attempt's reference is a PaymentIntent (pi_...) or a Checkout Session (cs_...).
INTENT_PREFIX = "pi_"

# Outcomes, as recorded on the attempt and the webhook's event.
PAID = "paid"
PAID_LATE = "paid_late"
REFUNDED_LATE = "refunded_late"
REFUNDED_TWICE_PAID = "refunded_double_payment"
REFUNDED_MISMATCH = "refunded_amount_mismatch"
DUPLICATE = "duplicate"
UNPAID = "unpaid"
SESSION_EXPIRED = "expired"

LATE_PAYMENT_REFUNDED = "payments.late_payment_refunded"


def attempt_by_session(session_id: str) -> PaymentAttempt | None:
    return db.session.scalar(sa.select(PaymentAttempt).where(PaymentAttempt.provider_reference == session_id))


def fetch_session(attempt: PaymentAttempt) -> Any:
    """The attempt's Checkout Session as Stripe has it now (raises ``stripe.StripeError`` when Stripe cannot say)."""
    return stripe_client().v1.checkout.sessions.retrieve(
        str(attempt.provider_reference), options={"stripe_account": attempt.account}
    )


def apply_session(attempt: PaymentAttempt, session: Any) -> str:
    """Bring the attempt and its order in line with ``session``; returns the outcome (not committed)."""
    db.session.refresh(attempt, with_for_update=True)
    if session.status == "expired":
        if attempt.status == OPEN:
            attempt.status, attempt.outcome = EXPIRED, SESSION_EXPIRED
        return SESSION_EXPIRED
    if session.payment_status != "paid":
        return UNPAID
    return apply_payment(attempt, str(session.payment_intent), session.amount_total, str(session.currency))


def apply_payment(attempt: PaymentAttempt, payment_intent: str, amount_minor: int, currency: str) -> str:
    """Issue the order for a succeeded PaymentIntent, or pay it back; the attempt's row is locked by the caller."""
    if attempt.status in (SUCCEEDED, REFUNDED):
        return DUPLICATE
    attempt.payment_reference = payment_intent
    order = db.session.get(Order, attempt.order_id)
    assert order is not None  # the foreign key keeps it
    if amount_minor != attempt.amount_minor or currency.upper() != attempt.currency.upper():
        orders.note(order, "payment_mismatch", {
            "expected": [attempt.amount_minor, attempt.currency],
            "received": [amount_minor, currency.upper()],
        })
        return _pay_back(attempt, order, REFUNDED_MISMATCH)
    settled = checkout.settle_payment(order, attempt.payment_reference)
    if settled == checkout.SETTLED or settled == checkout.SETTLED_LATE:
        attempt.status = SUCCEEDED
        attempt.outcome = PAID if settled == checkout.SETTLED else PAID_LATE
        return attempt.outcome
    if settled == checkout.ALREADY_PAID:
        # Another attempt paid this order first (two tabs, two cards): this money goes back.
        return _pay_back(attempt, order, REFUNDED_TWICE_PAID)
    return _pay_back(attempt, order, REFUNDED_LATE)


def is_intent_attempt(attempt: PaymentAttempt) -> bool:
    """Whether the attempt is a PaymentIntent of the embedded Payment Element (else a Checkout Session)."""
    return (attempt.provider_reference or "").startswith(INTENT_PREFIX)


def fetch_intent(attempt: PaymentAttempt) -> Any:
    """The attempt's PaymentIntent as Stripe has it now (raises ``stripe.StripeError`` when Stripe cannot say)."""
    return stripe_client().v1.payment_intents.retrieve(
        str(attempt.provider_reference), options={"stripe_account": attempt.account}
    )


def apply_intent(attempt: PaymentAttempt, intent: Any) -> str:
    """Bring an embedded-element attempt and its order in line with ``intent``; returns the outcome (not committed).

    Only ``succeeded`` settles; a declined card or a pending 3-D Secure check leaves the attempt open,
    so the buyer can try again with the same intent.
    """
    db.session.refresh(attempt, with_for_update=True)
    if intent.status == "canceled":
        if attempt.status == OPEN:
            attempt.status, attempt.outcome = EXPIRED, SESSION_EXPIRED
        return SESSION_EXPIRED
    if intent.status != "succeeded":
        return UNPAID
    return apply_payment(attempt, str(intent.id), intent.amount_received, str(intent.currency))


def apply_current(attempt: PaymentAttempt) -> str:
    """Re-fetch the attempt's session or intent and apply it (not committed). Raises ``stripe.StripeError``."""
    if is_intent_attempt(attempt):
        return apply_intent(attempt, fetch_intent(attempt))
    return apply_session(attempt, fetch_session(attempt))


def _pay_back(attempt: PaymentAttempt, order: Order, outcome: str) -> str:
    """Refund the attempt's whole payment on Stripe (its key makes a repeat the same refund)."""
    refund: Any = stripe_client().v1.refunds.create(
        {"payment_intent": attempt.payment_reference, "reason": "requested_by_customer",
         "refund_application_fee": True, "metadata": {"bilten_attempt_id": attempt.id, "bilten_reason": outcome}},
        options={"stripe_account": attempt.account, "idempotency_key": f"bilten-attempt-{attempt.id}-refund"},
    )
    attempt.status, attempt.outcome = REFUNDED, outcome
    orders.note(order, outcome, {"payment": attempt.payment_reference, "refund": refund.id,
                                 "amount_minor": attempt.amount_minor, "currency": attempt.currency})
    outbox.announce(LATE_PAYMENT_REFUNDED, {
        **checkout.order_payload(order), "reason": outcome, "refund": refund.id,
        "amount_minor": attempt.amount_minor, "currency": attempt.currency,
    })
    log.info("payment.refunded_automatically", order_id=order.id, attempt_id=attempt.id, outcome=outcome)
    return outcome


def settle_by_session(session_id: str) -> str:
    """Re-fetch a session we know and apply it; for an event naming it. Raises ``stripe.StripeError``."""
    attempt = attempt_by_session(session_id)
    if attempt is None:
        return "unknown_session"
    return apply_session(attempt, fetch_session(attempt))


def metadata_value(stripe_object: Any, key: str) -> str | None:
    """One of the metadata Bilten put on a Stripe object (its metadata is no dict: no ``.get``)."""
    metadata = getattr(stripe_object, "metadata", None)
    return str(metadata[key]) if metadata is not None and key in metadata else None


def settle_by_intent(intent: Any) -> str:
    """A PaymentIntent event: apply the session or the intent of the attempt it was made for, re-fetched."""
    attempt_id = metadata_value(intent, "bilten_attempt_id")
    attempt = db.session.get(PaymentAttempt, attempt_id) if attempt_id else None
    if attempt is None or attempt.provider_reference is None:
        return "unknown_payment"
    return apply_current(attempt)


def note_failure(intent: Any) -> str:
    """A declined card: the buyer may try again on the same page, so only the order's history changes."""
    attempt_id = metadata_value(intent, "bilten_attempt_id")
    attempt = db.session.get(PaymentAttempt, attempt_id) if attempt_id else None
    order = db.session.get(Order, attempt.order_id) if attempt is not None else None
    if order is None:
        return "unknown_payment"
    error = getattr(intent, "last_payment_error", None)
    orders.note(order, "payment_failed", {"payment": intent.id, "code": getattr(error, "code", None)})
    return "noted"

