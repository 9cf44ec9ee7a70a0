"""The buyer's way to PayPal's approval page and back, on the tenant's host.

``/payments/orders/<id>/paypal`` sends the buyer to the order's open PayPal order (opening one when
needed); PayPal sends them back to ``.../paypal/return``, which captures the approved payment and
settles the order at once, so the buyer sees their tickets without waiting for the webhook. The
webhooks and the reconciliation job do the same: whichever comes first acts, the others find it done.
"""

from __future__ import annotations

from typing import Any

import structlog
from flask import Blueprint, redirect, request
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.buyer_pages import back_to_order, order_or_404
from plugins.payments.paypal_checkout import PAYPAL, open_paypal_order
from plugins.payments.paypal_client import PayPalError, PayPalUnavailable
from plugins.payments.paypal_settlement import attempt_by_paypal_order, capture_and_apply
from plugins.payments.stripe_checkout import NotPayable
from plugins.ticketing import inventory

log = structlog.get_logger("bilten.payments.paypal_pay")

blueprint = Blueprint("payments_paypal", __name__, url_prefix="/payments/orders")


@blueprint.get("/<order_id>/paypal")
def pay(order_id: str) -> Any:
    """Go to the order's approval page at PayPal, or back to the order when there is nothing to pay."""
    order = order_or_404(order_id)
    if order.payment_provider != PAYPAL:
        return back_to_order(order)
    try:
        attempt = open_paypal_order(order, inventory.db_now())
    except NotPayable:
        return back_to_order(order)
    except (PayPalUnavailable, PayPalError) as exc:
        log.warning("paypal.unavailable", order_id=order.id, error=str(exc)[:200])
        raise ApiError(503, "provider_unavailable",
                       _("PayPal cannot be reached right now. Your tickets are still kept: "
                         "please try again in a moment.")) from None
    return redirect(str(attempt.redirect_url), 303)


@blueprint.get("/<order_id>/paypal/return")
def returned(order_id: str) -> Any:
    """Back from PayPal having approved: capture the payment and settle the order now, then show it."""
    order = order_or_404(order_id)
    attempt = attempt_by_paypal_order(request.args.get("token", ""))
    if attempt is not None and attempt.order_id == order.id:
        try:
            outcome = capture_and_apply(attempt)
            db.session.commit()
            log.info("paypal.returned", order_id=order.id, outcome=outcome)
        except (PayPalUnavailable, PayPalError) as exc:
            # The webhook or reconciliation settles it later: the order page says the payment is not complete yet.
            db.session.rollback()
            log.warning("paypal.return_unconfirmed", order_id=order.id, error=str(exc)[:200])
    return back_to_order(order)


@blueprint.get("/<order_id>/paypal/cancel")
def cancelled(order_id: str) -> Any:
    """The buyer cancelled on PayPal's page: back to the order, whose "Pay now" leads to the same PayPal order."""
    return back_to_order(order_or_404(order_id))
