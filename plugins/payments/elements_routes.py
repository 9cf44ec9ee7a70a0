"""The buyer's card page with Stripe's embedded Payment Element, and the way back after confirming.

``/payments/orders/<id>/card`` opens (or reuses) the order's PaymentIntent and shows the Payment
Element; Stripe.js confirms the payment in the browser and sends the buyer to ``.../card/return``,
which re-fetches the intent: paid settles the order at once; a 3-D Secure check still pending goes to
the bank's page; a declined card comes back to the card page, which says so, for another try with the
same intent. The webhook and the reconciliation job settle it too: whichever comes first acts.
"""

from __future__ import annotations

from typing import Any

import stripe
import structlog
from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.payments.buyer_pages import back_to_order, order_or_404
from plugins.payments.models import PaymentAttempt
from plugins.payments.settlement import apply_intent, attempt_by_session, fetch_intent, is_intent_attempt
from plugins.payments.stripe_checkout import STRIPE, NotPayable
from plugins.payments.stripe_client import StripeNotConfigured
from plugins.payments.stripe_elements import elements_enabled, open_intent
from plugins.payments.stripe_settings import stripe_settings
from plugins.ticketing import inventory
from plugins.ticketing.order_amounts import order_amounts
from plugins.ticketing.storefront import format_money

log = structlog.get_logger("bilten.payments.elements")

blueprint = Blueprint(
    "payments_elements", __name__, url_prefix="/payments", template_folder="templates",
    static_folder="static", static_url_path="/static",
)
# Stripe's intent states in which the buyer has nothing left to do on the card page.
FINISHED = ("succeeded", "processing", "canceled")


def _unavailable() -> ApiError:
    return ApiError(503, "provider_unavailable",
                    _("The card payment page cannot be reached right now. Your tickets are still kept: "
                      "please try again in a moment."))


def _failure_message(intent: Any) -> str | None:
    """Why the last try failed, in the buyer's language; None when nothing failed yet."""
    if intent.status != "requires_payment_method":
        return None
    error = getattr(intent, "last_payment_error", None)
    if error is None:
        return None
    if getattr(error, "code", None) == "payment_intent_authentication_failure":
        return _("Your bank did not confirm this payment, so nothing was charged. Try again, or use another card.")
    return _("Your card was declined, so nothing was charged. Try again, or use another card.")


@blueprint.get("/orders/<order_id>/card")
def card(order_id: str) -> Any:
    """The card form for the order's PaymentIntent, or back to the order when there is nothing to pay."""
    order = order_or_404(order_id)
    if order.payment_provider != STRIPE:
        return back_to_order(order)
    if not elements_enabled():
        return redirect(url_for("payments_pay.pay", order_id=order.id), 303)
    try:
        attempt, intent = open_intent(order, inventory.db_now())
        if intent.status in FINISHED:
            # Paid (or closed) already, say in another tab: settle it now rather than show the form again.
            apply_intent(attempt, intent)
            db.session.commit()
            return back_to_order(order)
    except NotPayable:
        return back_to_order(order)
    except (stripe.StripeError, StripeNotConfigured) as exc:
        db.session.rollback()
        log.warning("card.stripe_unavailable", order_id=order.id, error=str(exc)[:200])
        raise _unavailable() from None
    settings = stripe_settings()
    page = render_template(
        "payments/card_element.html", order=order, error=_failure_message(intent),
        amount=format_money(attempt.amount_minor, attempt.currency), amounts=order_amounts(order),
        stripe_js_url=settings.js_url,
        publishable_key=settings.publishable_key, client_secret=intent.client_secret, stripe_account=attempt.account,
        return_url=url_for("payments_elements.card_return", order_id=order.id, _external=True),
    )
    # The page carries the intent's client secret: no shared or back-button caches.
    return page, 200, {"Cache-Control": "no-store"}


@blueprint.get("/orders/<order_id>/card/return")
def card_return(order_id: str) -> Any:
    """Back from confirming: settle a paid intent now, finish a pending bank check, or offer the form again."""
    order = order_or_404(order_id)
    attempt: PaymentAttempt | None = attempt_by_session(request.args.get("payment_intent", ""))
    if attempt is None or attempt.order_id != order.id or not is_intent_attempt(attempt):
        return back_to_order(order)
    try:
        intent = fetch_intent(attempt)
        outcome = apply_intent(attempt, intent)
        db.session.commit()
    except (stripe.StripeError, StripeNotConfigured) as exc:
        # The webhook settles it when Stripe is back: the order page says the payment is not complete yet.
        db.session.rollback()
        log.warning("card.return_unconfirmed", order_id=order.id, error=str(exc)[:200])
        return back_to_order(order)
    log.info("card.returned", order_id=order.id, outcome=outcome, status=intent.status)
    next_action = getattr(intent, "next_action", None)
    if intent.status == "requires_action" and next_action is not None and next_action.type == "redirect_to_url":
        # The bank's 3-D Secure page, which sends the buyer back here once done.
        return redirect(str(next_action.redirect_to_url.url), 303)
    if intent.status == "requires_payment_method":
        return redirect(url_for("payments_elements.card", order_id=order.id), 303)
    return back_to_order(order)
