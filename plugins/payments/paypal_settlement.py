"""What a PayPal order's state means for its Bilten order: capture it, issue the tickets, or pay the money back.

PayPal tells us about a payment three ways (the buyer's return, webhooks, the reconciliation job),
at least once each and in any order. All end here: the attempt's row lock makes the first to
arrive the one that acts; the others find it done. Nothing here commits: the caller commits the
effect with its own record (the webhook's event row).
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
import structlog
from flask_babel import gettext as _

from bilten_core import outbox
from bilten_core.db import db
from plugins.payments import settlement
from plugins.payments.fees import FeeError, minor_units
from plugins.payments.models import PaymentAttempt
from plugins.payments.paypal_checkout import PAYPAL
from plugins.payments.paypal_client import PayPalError, paypal_client
from plugins.payments.stripe_checkout import FAILED, OPEN, REFUNDED, SUCCEEDED
from plugins.ticketing import checkout, orders
from plugins.ticketing.orders import Order

log = structlog.get_logger("bilten.payments.paypal")

UNKNOWN_PAYMENT = "unknown_payment"
DECLINED = "declined"
PENDING = "pending"
# custom_id of a refund Bilten makes by itself (a late, double or mismatched payment paid back).
PAYBACK_PREFIX = "bilten-payback-"


def attempt_by_paypal_order(paypal_order_id: str) -> PaymentAttempt | None:
    return db.session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.provider == PAYPAL, PaymentAttempt.provider_reference == paypal_order_id))


def attempt_by_capture(capture_id: str) -> PaymentAttempt | None:
    return db.session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.provider == PAYPAL, PaymentAttempt.payment_reference == capture_id))


def capture_and_apply(attempt: PaymentAttempt) -> str:
    """Capture the attempt's approved PayPal order (once: its request id) and apply what PayPal then says.

    Raises :class:`PayPalUnavailable` when PayPal cannot say; nothing is kept then.
    """
    db.session.refresh(attempt, with_for_update=True)
    if attempt.status != OPEN:
        return settlement.DUPLICATE
    client = paypal_client()
    try:
        captured = client.capture_order(str(attempt.provider_reference), f"bilten-attempt-{attempt.id}-capture")
    except PayPalError as exc:
        if exc.issue == "INSTRUMENT_DECLINED":
            _note(attempt, "payment_failed", {"provider": PAYPAL, "code": exc.issue})
            return DECLINED
        if exc.issue not in ("ORDER_ALREADY_CAPTURED", "ORDER_NOT_APPROVED"):
            raise
        # Captured meanwhile (another request id), or not approved yet: PayPal's order says which.
        captured = client.get_order(str(attempt.provider_reference))
    return apply_paypal_order(attempt, captured)


def apply_paypal_order(attempt: PaymentAttempt, paypal_order: dict[str, Any]) -> str:
    """Bring the attempt and its order in line with ``paypal_order`` as PayPal has it now (not committed)."""
    db.session.refresh(attempt, with_for_update=True)
    capture = first_capture(paypal_order)
    if paypal_order.get("status") != "COMPLETED" or capture is None:
        return settlement.UNPAID
    if capture.get("status") == "PENDING":
        return PENDING
    if capture.get("status") not in ("COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"):
        return settlement.UNPAID
    if attempt.status in (SUCCEEDED, REFUNDED):
        return settlement.DUPLICATE
    attempt.payment_reference = str(capture["id"])
    order = db.session.get(Order, attempt.order_id)
    assert order is not None  # the foreign key keeps it
    received = amount_of(capture)
    if received != (attempt.amount_minor, attempt.currency.upper()):
        orders.note(order, "payment_mismatch", {"expected": [attempt.amount_minor, attempt.currency],
                                                "received": list(received) if received else None})
        return _pay_back(attempt, order, settlement.REFUNDED_MISMATCH)
    settled = checkout.settle_payment(order, attempt.payment_reference)
    if settled in (checkout.SETTLED, checkout.SETTLED_LATE):
        attempt.status = SUCCEEDED
        attempt.outcome = settlement.PAID if settled == checkout.SETTLED else settlement.PAID_LATE
        return attempt.outcome
    if settled == checkout.ALREADY_PAID:
        return _pay_back(attempt, order, settlement.REFUNDED_TWICE_PAID)
    return _pay_back(attempt, order, settlement.REFUNDED_LATE)


def first_capture(paypal_order: dict[str, Any]) -> dict[str, Any] | None:
    units = paypal_order.get("purchase_units") or [{}]
    captures = ((units[0] or {}).get("payments") or {}).get("captures") or []
    return captures[0] if captures and isinstance(captures[0], dict) else None


def amount_of(paypal_object: dict[str, Any]) -> tuple[int, str] | None:
    """A PayPal ``amount`` in minor units and its currency, or None when it is not one Bilten can express."""
    amount = paypal_object.get("amount") or {}
    currency = str(amount.get("currency_code", "")).upper()
    try:
        return minor_units(str(amount.get("value")), currency), currency
    except (FeeError, ValueError, LookupError):
        return None


def _pay_back(attempt: PaymentAttempt, order: Order, outcome: str) -> str:
    """Refund the attempt's whole capture on PayPal (its request id makes a repeat the same refund)."""
    refund = paypal_client().refund_capture(
        str(attempt.payment_reference),
        {"custom_id": PAYBACK_PREFIX + attempt.id,
         "note_to_payer": _("Your payment was returned: the order could not be paid with it.")},
        request_id=f"bilten-attempt-{attempt.id}-refund",
    )
    attempt.status, attempt.outcome = REFUNDED, outcome
    orders.note(order, outcome, {"payment": attempt.payment_reference, "refund": refund.get("id"),
                                 "amount_minor": attempt.amount_minor, "currency": attempt.currency})
    outbox.announce(settlement.LATE_PAYMENT_REFUNDED, {
        **checkout.order_payload(order), "reason": outcome, "refund": refund.get("id"),
        "amount_minor": attempt.amount_minor, "currency": attempt.currency,
    })
    log.info("paypal.refunded_automatically", order_id=order.id, attempt_id=attempt.id, outcome=outcome)
    return outcome


def _note(attempt: PaymentAttempt, action: str, details: dict[str, Any]) -> None:
    order = db.session.get(Order, attempt.order_id)
    if order is not None:
        orders.note(order, action, details)


def settle_paypal_order(paypal_order_id: str) -> str:
    """For an event naming a PayPal order: capture it if approved, apply it if captured. Raises PayPalUnavailable."""
    attempt = attempt_by_paypal_order(paypal_order_id)
    if attempt is None:
        return UNKNOWN_PAYMENT
    current = paypal_client().get_order(paypal_order_id)
    if current.get("status") == "APPROVED":
        return capture_and_apply(attempt)
    return apply_paypal_order(attempt, current)


def note_denied(capture: dict[str, Any]) -> str:
    """A capture PayPal denied: the attempt failed (its PayPal order is spent) and the order still awaits
    payment, so the buyer's next visit to the payment link opens a new PayPal order."""
    attempt = _attempt_of_capture(capture)
    if attempt is None:
        return UNKNOWN_PAYMENT
    db.session.refresh(attempt, with_for_update=True)
    if attempt.status == OPEN:
        attempt.status, attempt.outcome = FAILED, DECLINED
    _note(attempt, "payment_failed", {"provider": PAYPAL, "payment": capture.get("id"), "code": "CAPTURE_DENIED"})
    return "noted"


def _attempt_of_capture(capture: dict[str, Any]) -> PaymentAttempt | None:
    attempt_id = capture.get("custom_id")
    attempt = db.session.get(PaymentAttempt, attempt_id) if _is_uuid(attempt_id) else None
    if attempt is None:
        related = ((capture.get("supplementary_data") or {}).get("related_ids") or {}).get("order_id")
        attempt = attempt_by_paypal_order(str(related)) if related else None
    return attempt if attempt is not None and attempt.provider == PAYPAL else None


def settle_by_capture(capture: dict[str, Any]) -> str:
    """A capture event: re-fetch its PayPal order and apply it. Raises PayPalUnavailable."""
    attempt = _attempt_of_capture(capture)
    if attempt is None or attempt.provider_reference is None:
        return UNKNOWN_PAYMENT
    return apply_paypal_order(attempt, paypal_client().get_order(attempt.provider_reference))


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True
