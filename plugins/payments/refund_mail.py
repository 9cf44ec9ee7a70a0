"""Telling the buyer why a payment was paid back without their asking (late, twice, or not matching)."""

from __future__ import annotations

from flask_babel import force_locale
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.mail import send_mail
from bilten_core.outbox import Event as OutboxEvent
from plugins.payments.settlement import LATE_PAYMENT_REFUNDED
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from plugins.ticketing.storefront import format_money

MAILED = "refund_mail_sent"


def handle_outbox_event(announcement: OutboxEvent) -> None:
    """Mail the buyer once per automatic refund (the outbox may deliver twice)."""
    if announcement.topic != LATE_PAYMENT_REFUNDED:
        return
    payload = announcement.payload
    order = db.session.get(Order, payload.get("order_id"), with_for_update=True)
    refund = payload.get("refund")
    if order is None or any(e.action == MAILED and e.details.get("refund") == refund for e in order.history):
        return
    event = db.session.get(Event, order.event_id)
    locale = general_settings().default_locale
    with force_locale(locale):
        subject = _("Your payment for order %(code)s was refunded", code=order.code)
    send_mail(order.email, "payments/payment_refunded", {
        "order": order, "event": event, "reason": payload.get("reason"),
        "amount": format_money(int(payload.get("amount_minor", 0)), str(payload.get("currency", order.currency))),
    }, subject=subject, locale=locale)
    orders.note(order, MAILED, {"refund": refund})
