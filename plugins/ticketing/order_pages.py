"""Guests find their order by email address and order code, and download its tickets as a PDF.

The find page answers a wrong code and a wrong address alike (``checkout.guest_order``) and is
rate-limited like the sign-in form, per client address and per typed address, so codes cannot be
guessed. The PDF opens with a signed, expiring link (``ticket_links``) that the confirmation mail,
the find page, the order-placed page and My tickets carry, or for the signed-in account whose
confirmed address bought the order.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, render_template, request
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from bilten_core.auth import throttle
from bilten_core.db import db
from bilten_core.kernel import kernel
from plugins.ticketing import ticket_links, ticket_pdf
from plugins.ticketing.checkout import guest_order
from plugins.ticketing.models import Event
from plugins.ticketing.my_tickets import ADMITTING_STATUSES, STATUS_LABELS
from plugins.ticketing.order_amounts import order_amounts
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.payments import instructions_for
from plugins.ticketing.storefront import when
from plugins.ticketing.ticket_display import display_code

blueprint = Blueprint("order_pages", __name__, template_folder="templates")

FIND_ENDPOINT = "order_pages.find_order"
EMAIL_MAX = 254
CODE_MAX = 32
# Pages that show ticket codes or carry a download token are nobody else's to keep.
PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def limit_lookups(app: Flask) -> None:
    """Limit order lookups as strictly as sign-ins; call once the kernel's limiter exists."""
    limiter = next(iter(app.extensions["limiter"]))  # the kernel's, the only one
    config = kernel(app).settings.throttle
    throttle.limit_endpoint(app, limiter, FIND_ENDPOINT, config.sign_in_per_ip)
    throttle.limit_endpoint_per_account(app, limiter, FIND_ENDPOINT, config.sign_in_per_account, "order_lookup")


@blueprint.app_template_global("ticket_pdf_path")
def ticket_pdf_path(order: Order) -> str | None:
    """The signed download path of ``order``'s tickets, or None while it has none."""
    return ticket_links.download_path(order) if ticket_pdf.has_tickets(order) else None


# --- Finding an order ----------------------------------------------------------------------------


def _form(errors: dict[str, list[str]], values: dict[str, str], status: int) -> Any:
    return render_template("ticketing/storefront/find_order.html", errors=errors, values=values), status, PRIVATE


def _field_errors(email: str, code: str) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not email or len(email) > EMAIL_MAX:
        errors["email"] = [_("Enter the email address you ordered with.")]
    if not code or len(code) > CODE_MAX:
        errors["code"] = [_("Enter the order code from your confirmation mail, such as K7M2QX9P.")]
    return errors


@blueprint.get("/orders/find")
def find_order_form() -> Any:
    return _form({}, {}, 200)


@blueprint.post("/orders/find")
def find_order() -> Any:
    email = (request.form.get("email") or "").strip()
    code = (request.form.get("code") or "").strip()
    values = {"email": email, "code": code}
    errors = _field_errors(email, code)
    if errors:
        return _form(errors, values, 400)
    order = guest_order(code, email)
    if order is None:
        # One answer whichever of the two is wrong: the page must not confirm that a code exists.
        return _form({"form": [_("We found no order with this code and email address. Check both and try again.")]},
                     values, 404)
    event = db.session.get(Event, order.event_id)
    tickets = [ticket for ticket in order.tickets if ticket.valid]
    page = render_template(
        "ticketing/storefront/order_found.html", order=order, event=event, when=when(event) if event else "",
        status_label=str(STATUS_LABELS.get(order.status, order.status)), tickets=tickets,
        amounts=order_amounts(order), instructions=instructions_for(order), admits=order.status in ADMITTING_STATUSES,
        display_code=display_code,
    )
    return page, 200, PRIVATE


# --- Downloading the tickets ---------------------------------------------------------------------


def _problem(status: int, title: str, message: str) -> Any:
    page = render_template("ticketing/storefront/order_problem.html", title=title, message=message)
    return page, status, PRIVATE


def order_with_tickets(code: str) -> Order | None:
    """The order with ``code`` (as typed) and its tickets, or None."""
    if len(code) > CODE_MAX:
        return None
    return db.session.scalars(
        sa.select(Order).where(Order.code == code.strip().upper())
        .options(selectinload(Order.tickets).selectinload(Ticket.ticket_type))
    ).first()


@blueprint.get("/orders/<code>/tickets.pdf")
def download_tickets(code: str) -> Any:
    order = order_with_tickets(code)
    refusal = ticket_links.refusal_for_buyer(order, request.args.get("token", ""))
    if order is None or refusal is not None:
        if refusal is ticket_links.Refusal.EXPIRED:
            message = _("This download link has expired. Find your order with your email address and order "
                        "code to get a new one.")
        else:
            message = _("This download link is not valid. Use the link in your confirmation mail, or find your "
                        "order with your email address and order code.")
        return _problem(403, _("Link not valid"), message)
    event = db.session.get(Event, order.event_id)
    if event is None or not ticket_pdf.has_tickets(order):
        status = str(STATUS_LABELS.get(order.status, order.status))
        return _problem(404, _("No tickets to download"), _(
            "Order %(code)s has no tickets to download (status: %(status)s). Tickets can be downloaded once "
            "an order is paid.", code=order.code, status=status,
        ))
    pdf = ticket_pdf.render_tickets(order, event)
    return Response(pdf, mimetype="application/pdf", headers={
        **PRIVATE, "Content-Disposition": f'attachment; filename="tickets-{order.code}.pdf"',
        "X-Robots-Tag": "noindex",
    })
