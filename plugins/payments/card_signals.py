"""Card signals: what Stripe says about the card behind a payment, fed into the fraud checks.

On ``charge.succeeded`` the charge is read again from Stripe (the event's copy is not trusted),
its card's fingerprint is counted against the buyer's address (:func:`fraud.record_card_fingerprint`)
and Radar's risk level is read. An address over its cards-per-day limit, or a payment Radar rates
``highest``, is noted in the order's history and staff are told; nothing is revoked, since the
money already arrived and only a person can tell a family sharing cards from a stolen one.

Settling the payment is left to the session and PaymentIntent events: a Stripe outage here only
delays the signal (the webhook answers 503 and Stripe delivers it again).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask_babel import force_locale, lazy_gettext
from flask_babel import gettext as _

from bilten_core import audit
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.notifications import notify_staff
from plugins.payments.fraud import record_card_fingerprint
from plugins.payments.models import PaymentAttempt
from plugins.payments.settlement import metadata_value
from plugins.payments.stripe_client import stripe_client
from plugins.ticketing import orders
from plugins.ticketing.orders import Order

RISK_FLAGGED = "risk_flagged"
NOTIFICATION_KIND = "payments.risk_flagged"
HIGHEST_RISK = "highest"
# Outcomes of the handler, recorded on the webhook's event.
FLAGGED = "risk_flagged"
RECORDED = "card_recorded"
UNKNOWN = "unknown_payment"
HISTORY_LABELS: dict[str, Any] = {RISK_FLAGGED: lazy_gettext("Flagged for review: card signals")}


def _field(stripe_object: Any, *path: str) -> Any:
    """A nested field of a Stripe object, or None where any step is missing (they are no dicts)."""
    value = stripe_object
    for name in path:
        value = getattr(value, name, None) if value is not None else None
    return value


def apply_charge_succeeded(charge_id: str, account: str) -> str:
    """Read the charge ``charge_id`` on ``account`` and act on its card signals (not committed).

    Raises ``stripe.StripeError`` when Stripe cannot say, so the event is delivered again.
    """
    charge = stripe_client().v1.charges.retrieve(charge_id, options={"stripe_account": account})
    attempt_id = metadata_value(charge, "bilten_attempt_id")
    attempt = db.session.get(PaymentAttempt, attempt_id) if attempt_id else None
    order = db.session.get(Order, attempt.order_id) if attempt is not None else None
    if order is None:
        return UNKNOWN
    fingerprint = _field(charge, "payment_method_details", "card", "fingerprint")
    risk_level = _field(charge, "outcome", "risk_level")
    too_many_cards = bool(fingerprint) and record_card_fingerprint(order.email, str(fingerprint))
    if not too_many_cards and risk_level != HIGHEST_RISK:
        return RECORDED
    details = {
        "charge": charge_id, "risk_level": risk_level, "outcome_type": _field(charge, "outcome", "type"),
        "too_many_cards": too_many_cards,
    }
    orders.note(order, RISK_FLAGGED, details)
    audit.record("payments.risk_flagged", "order", order.id, {"code": order.code, **details})
    _tell_staff(order, too_many_cards, risk_level == HIGHEST_RISK)
    return FLAGGED


def _tell_staff(order: Order, too_many_cards: bool, highest_risk: bool) -> None:
    with force_locale(general_settings().default_locale):
        reasons = []
        if highest_risk:
            reasons.append(_("Stripe Radar rates this payment's risk as highest."))
        if too_many_cards:
            reasons.append(_("The buyer's address paid with more different cards today than your fraud settings "
                             "allow."))
        notify_staff(
            NOTIFICATION_KIND,
            _("Check the card payment of order %(code)s", code=order.code),
            " ".join(reasons) + " " + _("The tickets stay valid unless you refund or cancel the order."),
            url_for("ticketing_orders_manage.order_detail", event_id=order.event_id, code=order.code),
        )
