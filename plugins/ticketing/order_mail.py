"""Mail to buyers about their orders: the confirmation with the tickets, how to pay an invoice, and that an
order held for review is being checked.

The confirmation carries the tickets as a PDF attachment and a signed link to download them again.

The outbox delivers an event at least once, so each mail is written to the order's history in the
same transaction that queues it, with the order row locked: a second delivery of the same event
waits for the first, finds the note and sends nothing.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from babel.dates import format_datetime
from flask_babel import force_locale
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.kernel import kernel
from bilten_core.mail import Attachment, send_mail
from bilten_core.outbox import Event as OutboxEvent
from plugins.ticketing import orders, ticket_links, ticket_pdf
from plugins.ticketing.models import Event
from plugins.ticketing.order_amounts import order_amounts
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import instructions_for
from plugins.ticketing.storefront import event_zone, when
from plugins.ticketing.ticket_display import display_code

CONFIRMED = "order_confirmed"
AWAITING_PAYMENT = "order_awaiting_payment"
HELD = "order_held"
MAIL_SENT = "mail_sent"
# The mail each topic calls for, and the order states in which it still makes sense to send it.
MAIL_FOR_TOPIC: dict[str, tuple[str, tuple[str, ...]]] = {
    "ticketing.order_paid": (CONFIRMED, (orders.PAID, orders.PARTIALLY_REFUNDED)),
    "ticketing.order_created": (AWAITING_PAYMENT, (orders.AWAITING_PAYMENT,)),
    "ticketing.order_held": (HELD, (orders.HELD,)),
    # An approved order awaiting payment gets how to pay (with the provider's link) only now.
    "ticketing.order_approved": (AWAITING_PAYMENT, (orders.AWAITING_PAYMENT,)),
}
MY_TICKETS_PATH = "/my/tickets"


def handle_outbox_event(announcement: OutboxEvent) -> None:
    """Mail the buyer what an order announcement calls for, once per order and kind of mail."""
    wanted = MAIL_FOR_TOPIC.get(announcement.topic)
    order_id = announcement.payload.get("order_id")
    if wanted is None or not isinstance(order_id, str):
        return
    kind, statuses = wanted
    order = db.session.scalars(sa.select(Order).where(Order.id == order_id).with_for_update()).first()
    if order is None or order.status not in statuses or already_mailed(order, kind):
        return
    event = db.session.get(Event, order.event_id)
    if event is None:
        return
    mail_order(order, event, kind)


def already_mailed(order: Order, kind: str) -> bool:
    return any(entry.action == MAIL_SENT and entry.details.get("kind") == kind for entry in order.history)


def mail_order(order: Order, event: Event, kind: str) -> None:
    """Queue ``kind`` of mail to the order's buyer and note it in the order's history."""
    locale = general_settings().default_locale
    with force_locale(locale):
        context = _context(order, event, locale)
        if kind == CONFIRMED:
            subject = _("Your tickets for %(event)s (order %(code)s)", event=event.title, code=order.code)
        elif kind == HELD:
            subject = _("We are checking your order %(code)s: %(event)s", code=order.code, event=event.title)
        else:
            subject = _("Payment for your order %(code)s: %(event)s", code=order.code, event=event.title)
    attachments = []
    if kind == CONFIRMED and ticket_pdf.has_tickets(order):
        pdf = ticket_pdf.render_tickets(order, event)
        attachments.append(Attachment(f"tickets-{order.code}.pdf", pdf, "application/pdf"))
        attachments.extend(
            Attachment(f"ticket-{index}.png", ticket_pdf.qr_png(ticket["code"]), "image/png", ticket["qr_id"])
            for index, ticket in enumerate(context["tickets"], start=1)
        )
    send_mail(order.email, f"ticketing/{kind}", context, subject=subject, locale=locale, attachments=attachments)
    orders.note(order, MAIL_SENT, {"kind": kind})


def _context(order: Order, event: Event, locale: str) -> dict[str, Any]:
    zone = event_zone(event)
    due = order.payment_due_at
    return {
        "order": order,
        "event": event,
        "when": when(event),
        "venue": ", ".join(part for part in (event.venue_name, event.venue_address) if part),
        "tickets": [
            {"type": ticket.ticket_type.name, "attendee": ticket.attendee_name or order.name,
             "code": display_code(ticket), "qr_id": f"qr-{ticket.id}@bilten"}
            for ticket in order.tickets
            if ticket.valid
        ],
        "amounts": order_amounts(order),
        "instructions": instructions_for(order),
        "payment_due": format_datetime(due.astimezone(zone), "long", locale=locale) if due else None,
        "order_path": f"/checkout/{order.reservation_id}/done" if order.reservation_id else None,
        "event_path": f"/events/{event.slug}",
        "my_tickets_path": MY_TICKETS_PATH,
        "pdf_path": ticket_links.download_path(order) if ticket_pdf.has_tickets(order) else None,
        "ticket_page_path": kernel().plugins.hook_for_tenant("ticket_page_url")(order=order),
    }
