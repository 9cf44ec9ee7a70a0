"""The buyer's way to Stripe's hosted page and back, on the tenant's host.

``/payments/orders/<id>/pay`` sends the buyer to the order's open Checkout Session (opening one when
needed); Stripe sends them back to ``.../return``, which settles the order at once when Stripe says
it is paid, so the buyer sees their tickets without waiting for the webhook. The webhook and the
reconciliation job settle it too: whichever comes first acts, the others find it done.
"""

from __future__ import annotations

from typing import Any

import stripe
import structlog
from flask import Blueprint, redirect, request
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.buyer_pages import back_to_order, order_or_404
from plugins.payments.settlement import apply_session, fetch_session
from plugins.payments.stripe_checkout import NotPayable, latest_attempt, open_session
from plugins.payments.stripe_client import StripeNotConfigured
from plugins.ticketing import inventory

log = structlog.get_logger("bilten.payments.pay")

blueprint = Blueprint("payments_pay", __name__, url_prefix="/payments/orders")


@blueprint.get("/<order_id>/pay")
def pay(order_id: str) -> Any:
    """Go to the order's payment page at Stripe, or back to the order when there is nothing to pay."""
    order = order_or_404(order_id)
    try:
        attempt = open_session(order, inventory.db_now())
    except NotPayable:
        return back_to_order(order)
    except (stripe.StripeError, StripeNotConfigured) as exc:
        log.warning("pay.stripe_unavailable", order_id=order.id, error=str(exc)[:200])
        raise ApiError(503, "provider_unavailable",
                       _("The card payment page cannot be reached right now. Your tickets are still kept: "
                         "please try again in a moment.")) from None
    return redirect(str(attempt.redirect_url), 303)


@blueprint.get("/<order_id>/return")
def returned(order_id: str) -> Any:
    """Back from Stripe's page: settle the order now if Stripe says it is paid, then show it."""
    order = order_or_404(order_id)
    attempt = latest_attempt(order.id)
    session_id = request.args.get("session_id", "")
    if attempt is not None and attempt.provider_reference == session_id:
        try:
            outcome = apply_session(attempt, fetch_session(attempt))
            db.session.commit()
            log.info("pay.returned", order_id=order.id, outcome=outcome)
        except (stripe.StripeError, StripeNotConfigured) as exc:
            # The webhook settles it when Stripe is back: the order page says the payment is being confirmed.
            db.session.rollback()
            log.warning("pay.return_unconfirmed", order_id=order.id, error=str(exc)[:200])
    return back_to_order(order)
