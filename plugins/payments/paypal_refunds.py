"""Refunds of PayPal payments: asked of PayPal for ticketing's refunds, and taken from PayPal's refund events."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import structlog
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.fees import major_units
from plugins.payments.models import PaymentAttempt
from plugins.payments.paypal_checkout import PAYPAL
from plugins.payments.paypal_client import PayPalError, PayPalUnavailable, paypal_client
from plugins.payments.paypal_settlement import PAYBACK_PREFIX, UNKNOWN_PAYMENT, amount_of, attempt_by_capture
from plugins.payments.stripe_checkout import SUCCEEDED
from plugins.ticketing import refunds
from plugins.ticketing.orders import Order

log = structlog.get_logger("bilten.payments.paypal_refunds")

REFUND_PREFIX = "bilten-refund-"
# PayPal's refund statuses that end a refund, as ticketing's; PENDING ends nothing yet.
REFUND_STATUSES = {"COMPLETED": refunds.SUCCEEDED, "FAILED": refunds.FAILED, "CANCELLED": refunds.FAILED}


def refund_paypal_payment(order: Order, amount_minor: int, reference: str) -> str | None:
    """Ask PayPal to pay back ``amount_minor`` of the order's capture; returns PayPal's refund id.

    ``reference`` (ticketing's refund id) makes the ``PayPal-Request-Id``, so a retry is the same refund.
    """
    if order.payment_provider != PAYPAL:
        return None
    attempt = db.session.scalar(sa.select(PaymentAttempt).where(
        PaymentAttempt.order_id == order.id, PaymentAttempt.provider == PAYPAL, PaymentAttempt.status == SUCCEEDED))
    if attempt is None or attempt.payment_reference is None:
        raise ApiError(409, "payment_not_found", _("No PayPal payment of this order was found to refund."))
    body = {
        "amount": {"currency_code": order.currency.upper(), "value": str(major_units(amount_minor, order.currency))},
        "custom_id": REFUND_PREFIX + reference,
    }
    try:
        refund = paypal_client().refund_capture(attempt.payment_reference, body,
                                                request_id=f"bilten-refund-{reference}")
    except PayPalError as exc:
        if exc.issue == "REFUND_AMOUNT_EXCEEDED":
            raise ApiError(409, "refund_amount_exceeded",
                           _("PayPal refused this refund: it is more than what is left of the payment there."),
                           {"provider_issue": exc.issue}) from None
        raise ApiError(409, "refund_refused", _("PayPal refused this refund."),
                       {"provider_issue": exc.issue or exc.name}) from None
    except PayPalUnavailable as exc:
        log.warning("refund.paypal_unavailable", order_id=order.id, error=str(exc))
        raise ApiError(503, "provider_unavailable", _("PayPal could not be reached; try the refund again.")) from None
    return str(refund["id"])


def apply_refund_event(refund: dict[str, Any]) -> str:
    """``PAYMENT.CAPTURE.REFUNDED``: settle the refund Bilten asked for, or record one made in PayPal."""
    custom_id = str(refund.get("custom_id") or "")
    if custom_id.startswith(PAYBACK_PREFIX):
        return "own_refund"  # a late or double payment paid back by settlement, not a refund of the order
    attempt = attempt_by_capture(_capture_id(refund) or "")
    if attempt is None:
        return UNKNOWN_PAYMENT
    # Bilten's own refund commits holding the order's row: waiting for it makes that refund visible here.
    order = db.session.scalar(sa.select(Order).where(Order.id == attempt.order_id).with_for_update())
    refund_id = str(refund.get("id"))
    status = REFUND_STATUSES.get(str(refund.get("status")))
    if status is not None and refunds.settle_provider_refund(refund_id, status) is not None:
        return "refund_" + status
    amount = amount_of(refund)
    if order is None or attempt.status != SUCCEEDED or status != refunds.SUCCEEDED or amount is None:
        return "ignored"
    try:
        refunds.refund(order, amount_minor=amount[0], reference=refund_id, reason=_("Refunded in PayPal"))
    except ApiError as exc:
        log.warning("refund.not_recorded", order_id=order.id, refund=refund_id, code=exc.error_code)
        return "not_recordable"
    return "recorded"


def _capture_id(refund: dict[str, Any]) -> str | None:
    """The capture a refund belongs to: its ``up`` link ends with the capture's id."""
    for link in refund.get("links") or []:
        if isinstance(link, dict) and link.get("rel") == "up" and "/captures/" in str(link.get("href")):
            return str(link["href"]).rstrip("/").rsplit("/", 1)[-1]
    return None
