"""What organisers do with the orders of their events, shared by the organiser's pages and the staff API.

Finding orders and attendees (filters, free-text search, stable pages), mailing an order again,
changing a ticket's attendee, and CSV exports. Every change is written to the order's history (and
so to the audit trail) in the transaction that makes it.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import Response, stream_with_context
from flask_babel import gettext as _
from sqlalchemy.orm import contains_eager, selectinload

from bilten_core.auth.services import email_problems
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant, tenant_context
from plugins.ticketing import checkout, order_mail, orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.storefront import money_amount

SEARCH_MAX = 200
ATTENDEE_NAME_MAX = 200
ATTENDEE_EMAIL_MAX = 254
MAIL_RESENT = "mail_resent"
ATTENDEE_CHANGED = "attendee_changed"
# The mail an order in each state can be sent again: its tickets once paid, how to pay while awaiting payment.
RESEND_KIND = {
    orders.PAID: order_mail.CONFIRMED,
    orders.PARTIALLY_REFUNDED: order_mail.CONFIRMED,
    orders.AWAITING_PAYMENT: order_mail.AWAITING_PAYMENT,
}
# Orders whose tickets will never admit anyone: their attendees are history, not to be edited.
CLOSED_STATUSES = (orders.CANCELLED, orders.EXPIRED, orders.REFUNDED)
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CSV_BATCH = 500


@dataclass(frozen=True)
class OrderFilters:
    event_id: str | None = None
    status: str | None = None
    q: str = ""
    # Days in the tenant's time zone, both included.
    created_from: date | None = None
    created_to: date | None = None


@dataclass(frozen=True)
class AttendeeFilters:
    event_id: str
    ticket_type_id: str | None = None
    status: str | None = None  # the order's
    valid_only: bool = False
    q: str = ""


def _like(text: str) -> str:
    """A pattern matching ``text`` anywhere, ``%`` and ``_`` taken literally; NUL, which no column holds, dropped."""
    text = text.replace("\x00", "")
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(general_settings().timezone))


def _order_condition(filters: OrderFilters) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.event_id:
        conditions.append(Order.event_id == filters.event_id)
    if filters.status:
        conditions.append(Order.status == filters.status)
    if text := filters.q.strip():
        like = _like(text)
        attendee = sa.select(Ticket.id).where(Ticket.order_id == Order.id, Ticket.attendee_name.ilike(like))
        conditions.append(sa.or_(
            Order.code.ilike(like), Order.email.ilike(like), Order.name.ilike(like), attendee.exists(),
        ))
    if filters.created_from:
        conditions.append(Order.created_at >= _day_start(filters.created_from))
    if filters.created_to and filters.created_to < date.max:
        conditions.append(Order.created_at < _day_start(filters.created_to + timedelta(days=1)))
    return sa.and_(sa.true(), *conditions)


def _orders_query(filters: OrderFilters) -> sa.Select[tuple[Order]]:
    # Newest first; the id breaks ties, so pages neither repeat nor skip orders placed at the same moment.
    return (
        sa.select(Order).where(_order_condition(filters))
        .options(selectinload(Order.tickets).selectinload(Ticket.ticket_type))
        .order_by(Order.created_at.desc(), Order.id)
    )


def count_orders(filters: OrderFilters) -> int:
    return db.session.scalar(sa.select(sa.func.count(Order.id)).where(_order_condition(filters))) or 0


def find_orders(filters: OrderFilters, offset: int = 0, limit: int | None = None) -> list[Order]:
    return list(db.session.scalars(_orders_query(filters).offset(offset).limit(limit)))


def _attendee_condition(filters: AttendeeFilters) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = [Order.event_id == filters.event_id]
    if filters.ticket_type_id:
        conditions.append(Ticket.ticket_type_id == filters.ticket_type_id)
    if filters.status:
        conditions.append(Order.status == filters.status)
    if filters.valid_only:
        conditions.append(Ticket.valid.is_(True))
    if text := filters.q.strip():
        like = _like(text)
        conditions.append(sa.or_(
            Ticket.attendee_name.ilike(like), Ticket.attendee_email.ilike(like), Order.code.ilike(like),
            Order.name.ilike(like), Order.email.ilike(like),
        ))
    return sa.and_(*conditions)


def _attendees_query(filters: AttendeeFilters) -> sa.Select[tuple[Ticket]]:
    return (
        sa.select(Ticket).join(Order, Order.id == Ticket.order_id).where(_attendee_condition(filters))
        .options(contains_eager(Ticket.order), selectinload(Ticket.ticket_type))
        .order_by(Order.created_at.desc(), Order.id, Ticket.position, Ticket.id)
    )


def count_attendees(filters: AttendeeFilters) -> int:
    query = sa.select(sa.func.count(Ticket.id)).join(Order, Order.id == Ticket.order_id)
    return db.session.scalar(query.where(_attendee_condition(filters))) or 0


def find_attendees(filters: AttendeeFilters, offset: int = 0, limit: int | None = None) -> list[Ticket]:
    return list(db.session.scalars(_attendees_query(filters).offset(offset).limit(limit)))


def order_of_event(code: str, event_id: str | None = None) -> Order:
    """The order with ``code`` (of ``event_id`` when given), brought up to date; 404 otherwise."""
    order = checkout.order_by_code(code) if len(code) <= 32 else None
    if order is None or (event_id is not None and order.event_id != event_id):
        raise ApiError(404, "order_not_found", _("There is no such order."))
    checkout.expire_if_due(order)
    return order


def ticket_of(order: Order, ticket_id: str) -> Ticket:
    ticket = next((ticket for ticket in order.tickets if ticket.id == ticket_id), None)
    if ticket is None:
        raise ApiError(404, "ticket_not_found", _("This order has no such ticket."))
    return ticket


# --- Changes ---------------------------------------------------------------------------------------


def resend(order: Order) -> str:
    """Mail the buyer again what the order's state calls for; returns the kind of mail sent.

    Unlike the mail sent when the order changes state, this one goes out however often it was sent before.
    """
    kind = RESEND_KIND.get(order.status)
    if kind is None:
        raise ApiError(
            409, "nothing_to_resend", _("There is no mail to send again for an order that is %(status)s.",
                                        status=order.status),
            {"status": order.status},
        )
    event = db.session.get(Event, order.event_id)
    if event is None:
        raise ApiError(404, "event_not_found", _("There is no such event."))
    order_mail.mail_order(order, event, kind)
    orders.note(order, MAIL_RESENT, {"kind": kind})
    db.session.commit()
    return kind


def attendee_problems(name: str | None, email: str | None) -> dict[str, list[str]]:
    """What is wrong with an attendee's name and email, by field (empty when both are fine)."""
    problems: dict[str, list[str]] = {}
    if name is not None and (len(name) > ATTENDEE_NAME_MAX or CONTROL_CHARACTERS.search(name)):
        problems["name"] = [_("Use at most %(max)d characters for the name, on one line.", max=ATTENDEE_NAME_MAX)]
    if email is not None and (len(email) > ATTENDEE_EMAIL_MAX or email_problems(email)):
        problems["email"] = [_("Enter a valid email address.")]
    return problems


def rename_attendee(ticket: Ticket, name: str | None, email: str | None) -> bool:
    """Change the ticket's attendee (empty clears a value); returns whether anything changed.

    The old and new values go into the order's history.
    """
    order = ticket.order
    if order.status in CLOSED_STATUSES:
        raise ApiError(
            409, "order_closed", _("The attendees of an order that is %(status)s cannot be changed.",
                                   status=order.status),
            {"status": order.status},
        )
    name = (name or "").strip() or None
    email = (email or "").strip() or None
    if problems := attendee_problems(name, email):
        raise ApiError(422, "invalid_attendee", _("Check the attendee's name and email address."), problems)
    changes: dict[str, Any] = {}
    if name != ticket.attendee_name:
        changes["name"] = [ticket.attendee_name, name]
        ticket.attendee_name = name
    if email != ticket.attendee_email:
        changes["email"] = [ticket.attendee_email, email]
        ticket.attendee_email = email
    if not changes:
        return False
    orders.note(order, ATTENDEE_CHANGED, {"ticket_id": ticket.id, **changes})
    db.session.commit()
    return True


# --- CSV -------------------------------------------------------------------------------------------


def csv_cell(value: Any) -> str:
    """``value`` as CSV text that a spreadsheet shows rather than runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in itertools.chain([header], rows):
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _in_batches(
    query: sa.Select[Any], columns: tuple[Any, ...], key: Callable[[Any], tuple[Any, ...]]
) -> Iterator[Any]:
    """The query's rows a batch at a time, in ascending order of ``columns`` (which ``key`` reads off a row).

    Each batch starts after the last row of the one before (keyset paging), so a long export holds one
    batch in memory and neither repeats nor skips rows when orders arrive meanwhile.
    """
    after: tuple[Any, ...] | None = None
    while True:
        page = query.order_by(*columns)
        if after is not None:
            bounds = [sa.literal(value, column.type) for value, column in zip(after, columns, strict=True)]
            page = page.where(sa.tuple_(*columns) > sa.tuple_(*bounds))
        batch = list(db.session.scalars(page.limit(CSV_BATCH)))
        yield from batch
        if len(batch) < CSV_BATCH:
            return
        after = key(batch[-1])


def _moment(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def orders_csv(filters: OrderFilters) -> Iterator[str]:
    """The orders ``filters`` finds, oldest first, one CSV line at a time (header first)."""
    header = [_("Order code"), _("Status"), _("Buyer name"), _("Buyer email"), _("Tickets"), _("Total"),
              _("Tax"), _("Currency"), _("Payment"), _("Placed at"), _("Paid at")]
    rows = (
        [order.code, order.status, order.name, order.email, sum(1 for t in order.tickets if t.valid),
         money_amount(order.total_minor, order.currency), money_amount(order.tax_minor, order.currency),
         order.currency, order.payment_provider, _moment(order.created_at), _moment(order.paid_at)]
        for order in _in_batches(
            _orders_query(filters).order_by(None), (Order.created_at, Order.id), lambda o: (o.created_at, o.id)
        )
    )
    return _csv_lines(header, rows)


def attendees_csv(filters: AttendeeFilters) -> Iterator[str]:
    """The tickets ``filters`` finds with their attendees, oldest order first, one CSV line at a time."""
    header = [_("Attendee name"), _("Attendee email"), _("Ticket type"), _("Valid"), _("Price"), _("Order code"),
              _("Order status"), _("Buyer name"), _("Buyer email"), _("Ticket id")]
    rows = (
        [ticket.attendee_name, ticket.attendee_email, ticket.ticket_type.name, _("yes") if ticket.valid else _("no"),
         money_amount(ticket.price_minor, ticket.order.currency), ticket.order.code, ticket.order.status,
         ticket.order.name, ticket.order.email, ticket.id]
        for ticket in _in_batches(
            _attendees_query(filters).order_by(None), (Order.created_at, Order.id, Ticket.position, Ticket.id),
            lambda t: (t.order.created_at, t.order.id, t.position, t.id),
        )
    )
    return _csv_lines(header, rows)


def csv_download(lines: Iterator[str], filename: str) -> Response:
    """A CSV file written while it is sent, read as the tenant being served now."""
    tenant = current_tenant()

    def produce() -> Iterator[str]:
        # The request's tenant is released once the view returns, before the body is sent.
        with tenant_context(tenant):
            yield from lines

    return Response(
        stream_with_context(produce()), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
