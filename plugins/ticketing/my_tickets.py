"""My tickets: a signed-in buyer's orders of this tenant, found by the email address they verified.

Guests buy with an email address and no account; creating an account with that address and
confirming it is how they claim those orders later. An address not (or no longer) confirmed shows
nothing, since anyone may type someone else's address into a checkout or a sign-up form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, redirect, render_template, url_for
from flask_babel import lazy_gettext
from sqlalchemy.orm import selectinload

from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import Account
from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.order_amounts import order_amounts
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.storefront import short_when
from plugins.ticketing.ticket_display import display_code

blueprint = Blueprint("my_tickets", __name__, template_folder="templates")

MAX_ORDERS = 200
# Ticket codes get people in: shown only once the order is paid.
ADMITTING_STATUSES = (orders.PAID, orders.PARTIALLY_REFUNDED)
STATUS_LABELS = {
    orders.RESERVED: lazy_gettext("Being placed"),
    orders.HELD: lazy_gettext("Being checked"),
    orders.AWAITING_PAYMENT: lazy_gettext("Awaiting payment"),
    orders.PAID: lazy_gettext("Paid"),
    orders.PARTIALLY_REFUNDED: lazy_gettext("Partly refunded"),
    orders.REFUNDED: lazy_gettext("Refunded"),
    orders.CANCELLED: lazy_gettext("Cancelled"),
    orders.EXPIRED: lazy_gettext("Expired"),
}


@dataclass
class OrderView:
    order: Order
    event: Event | None
    when: str
    status_label: str
    total: str
    tickets: list[Ticket]
    admits: bool


def orders_of(email: str) -> list[Order]:
    """This tenant's orders bought with ``email`` (compared without case), newest first."""
    return list(
        db.session.scalars(
            sa.select(Order)
            .where(sa.func.lower(Order.email) == email.strip().lower())
            .options(selectinload(Order.tickets).selectinload(Ticket.ticket_type))
            .order_by(Order.created_at.desc(), Order.code)
            .limit(MAX_ORDERS)
        )
    )


def _view(order: Order, events: dict[str, Event]) -> OrderView:
    event = events.get(order.event_id)
    return OrderView(
        order=order, event=event, when=short_when(event) if event else "",
        status_label=str(STATUS_LABELS.get(order.status, order.status)),
        total=order_amounts(order).total,  # what the buyer paid: the tickets and any fees on top
        tickets=[ticket for ticket in order.tickets if ticket.valid],
        admits=order.status in ADMITTING_STATUSES,
    )


@blueprint.get("/my/tickets")
def my_tickets() -> Any:
    identity = current_identity()
    tenant = current_tenant()
    if identity is None or identity.channel != "session" or identity.tenant_id != tenant.id:
        return redirect(url_for("account.sign_in", next="/my/tickets"))
    account = db.session.get(Account, identity.account_id)
    if account is None:
        return redirect(url_for("account.sign_in", next="/my/tickets"))
    if not account.is_verified:
        return render_template("ticketing/storefront/my_tickets.html", verified=False, account=account, views=[])
    found = orders_of(account.email)
    event_ids = {order.event_id for order in found}
    events = {e.id: e for e in db.session.scalars(sa.select(Event).where(Event.id.in_(event_ids)))} if event_ids else {}
    views = [_view(order, events) for order in found]
    response = render_template("ticketing/storefront/my_tickets.html", verified=True, account=account, views=views,
                               display_code=display_code)
    return response, 200, {"Cache-Control": "private, no-store"}
