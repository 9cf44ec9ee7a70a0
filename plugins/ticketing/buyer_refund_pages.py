"""The pages where a buyer asks for a refund: choose tickets, confirm, done.

They open with a signed link (``refund_links``) from the find-your-order page or My tickets; every
step checks the link again, so a form sent without it, or with another order's, is refused (403).
Refusals by the event's policy are explained on the page, never as an error.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, render_template, request
from flask_babel import format_datetime, format_decimal
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.ticketing import buyer_refunds, refund_links
from plugins.ticketing.buyer_refunds import Quote
from plugins.ticketing.models import Event
from plugins.ticketing.order_pages import PRIVATE, order_with_tickets
from plugins.ticketing.orders import Order
from plugins.ticketing.storefront import format_money

blueprint = Blueprint("buyer_refunds", __name__, template_folder="templates")

TICKETS_MAX = 200


@blueprint.app_template_global("refund_request_path")
def refund_request_path(order: Order, event: Event | None) -> str | None:
    """The signed path of ``order``'s refund request page while its buyer may ask for one, else None."""
    if buyer_refunds.refusal(order, event) is not None:
        return None
    return refund_links.refund_path(order)


def _page(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(f"ticketing/storefront/{template}", **context), status, PRIVATE


def _message(status: int, title: str, message: str) -> Any:
    return _page("order_problem.html", status, title=title, message=message)


def _opened(code: str, token: str) -> tuple[Order, Event | None] | None:
    """The order and its event when ``token`` opens the refund page of order ``code``, else None."""
    order = order_with_tickets(code)
    if order is None or not refund_links.token_opens(token, order):
        return None
    return order, db.session.get(Event, order.event_id)


def _link_refused() -> Any:
    # An unknown code is refused like a bad link, so the answer never tells which codes exist.
    return _message(403, _("Link not valid"), _(
        "This refund link is not valid or has expired. Find your order with your email address and order "
        "code to get a new one."))


def _deadline(event: Event) -> str:
    until = buyer_refunds.deadline(event)
    if until is None:
        return ""
    return format_datetime(until.astimezone(ZoneInfo(event.timezone or "UTC")), "medium")


def _refused(reason: str) -> Any:
    return _message(409, _("No refund possible"), reason)


def _choose(order: Order, event: Event, token: str, error: str | None = None, status: int = 200) -> Any:
    tickets = [ticket for ticket in order.tickets if ticket.valid]
    return _page("refund_request.html", status, order=order, event=event, token=token, tickets=tickets,
                 error=error, deadline=_deadline(event),
                 fee_percent=format_decimal(event.refund_fee_percent_bp / 100) if event.refund_fee_percent_bp else "",
                 money=lambda minor: format_money(minor, order.currency))


@blueprint.get("/orders/<code>/refund")
def choose_tickets(code: str) -> Any:
    token = request.args.get("token", "")
    opened = _opened(code, token)
    if opened is None:
        return _link_refused()
    order, event = opened
    if (reason := buyer_refunds.refusal(order, event)) is not None or event is None:
        return _refused(reason or "")
    return _choose(order, event, token)


def _chosen_ids() -> list[str]:
    return request.form.getlist("ticket_ids")[:TICKETS_MAX]


@blueprint.post("/orders/<code>/refund/confirm")
def confirm(code: str) -> Any:
    token = request.form.get("token", "")
    opened = _opened(code, token)
    if opened is None:
        return _link_refused()
    order, event = opened
    if (reason := buyer_refunds.refusal(order, event)) is not None or event is None:
        return _refused(reason or "")
    try:
        quote: Quote = buyer_refunds.quote(order, event, _chosen_ids())
    except ApiError as error:
        return _choose(order, event, token, error=error.description, status=400)
    return _page("refund_request_confirm.html", order=order, event=event, token=token, quote=quote,
                 form_key=buyer_refunds.new_form_key(), money=lambda minor: format_money(minor, order.currency))


@blueprint.post("/orders/<code>/refund")
def request_refund(code: str) -> Any:
    token = request.form.get("token", "")
    opened = _opened(code, token)
    if opened is None:
        return _link_refused()
    order, event = opened
    try:
        made, created = buyer_refunds.request_refund(order, _chosen_ids(), request.form.get("form_key", ""))
    except ApiError as error:
        if error.error_code == "outside_refund_policy":
            return _refused(str(error.description))
        return _message(error.code or 409, _("No refund possible"), str(error.description))
    return _page("refund_request_done.html", order=order, event=event, made=made, created=created,
                 amount=format_money(made.amount_minor, made.currency), fee=format_money(made.fee_minor, made.currency))
