"""Issuing invoices for paid orders and credit notes for their refunds, once each.

``issue_invoice`` and ``issue_credit_note`` lock the order's row first, so twin deliveries of one
announcement take turns: the second finds the document the first committed and issues nothing.
Unique keys back this up (one invoice per order, one credit note per refund, one document per
number). The number comes from :mod:`plugins.invoicing.numbering` in the same transaction, so a
rollback anywhere gives it back.

Orders that cost nothing get no invoice, and neither do orders never paid. A refund gets a credit
note only when its order has an invoice; a credit note whose invoice is missing (its announcement
not handled yet) issues the invoice first, so the two always come in order.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _

from bilten_core import audit
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.outbox import Event as Announcement
from bilten_core.tenancy.context import current_tenant
from plugins.invoicing import numbering
from plugins.invoicing.invoicing_settings import invoicing_settings
from plugins.invoicing.models import CREDIT_NOTE, INVOICE, Document
from plugins.ticketing import orders
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.payments import fees_of
from plugins.ticketing.questions import BILLING_ADDRESS, TAX_ID, billing_details
from plugins.ticketing.refunds import Refund

PAID_TOPIC = "ticketing.order_paid"
REFUNDED_TOPIC = "ticketing.order_refunded"
INVOICE_ISSUED = "invoice_issued"
CREDIT_NOTE_ISSUED = "credit_note_issued"
BASIS_POINTS = 10_000
SEARCH_MAX = 100


# --- Reading -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFilters:
    kind: str | None = None
    # Days in the tenant's time zone, both included.
    issued_from: date | None = None
    issued_to: date | None = None
    q: str = ""  # part of the number or the order code


def invoice_of(order_id: str) -> Document | None:
    return db.session.scalars(
        sa.select(Document).where(Document.order_id == order_id, Document.kind == INVOICE)
    ).first()


def documents_of(order_id: str) -> list[Document]:
    """The order's invoice and then its credit notes, in the order they were issued."""
    return list(db.session.scalars(
        sa.select(Document).where(Document.order_id == order_id).order_by(Document.issued_at, Document.id)
    ))


def document_by_number(number: str) -> Document | None:
    """The document numbered ``number`` (the invoice, should a credit note share its number)."""
    return db.session.scalars(
        sa.select(Document).where(Document.number == number).order_by(Document.kind.desc()).limit(1)
    ).first()


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, ZoneInfo(general_settings().timezone))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _condition(filters: DocumentFilters) -> sa.ColumnElement[bool]:
    conditions: list[sa.ColumnElement[bool]] = []
    if filters.kind:
        conditions.append(Document.kind == filters.kind)
    if filters.issued_from:
        conditions.append(Document.issued_at >= _day_start(filters.issued_from))
    if filters.issued_to and filters.issued_to < date.max:
        conditions.append(Document.issued_at < _day_start(filters.issued_to + timedelta(days=1)))
    if text := filters.q.replace("\x00", "").strip():
        conditions.append(sa.or_(Document.number.ilike(_like(text)), Document.order_code.ilike(_like(text))))
    return sa.and_(sa.true(), *conditions)


def count_documents(filters: DocumentFilters) -> int:
    return db.session.scalar(sa.select(sa.func.count(Document.id)).where(_condition(filters))) or 0


def find_documents(filters: DocumentFilters, offset: int = 0, limit: int | None = None) -> list[Document]:
    """Newest first; the id breaks ties, so pages neither repeat nor skip documents."""
    query = sa.select(Document).where(_condition(filters)).order_by(Document.issued_at.desc(), Document.id.desc())
    return list(db.session.scalars(query.offset(offset).limit(limit)))


def documents_oldest_first(filters: DocumentFilters) -> sa.Select[Document]:
    """The query of an export, to be read in batches by (issued_at, id)."""
    return sa.select(Document).where(_condition(filters))


# --- Issuing -------------------------------------------------------------------------------------


def _lock(order: Order) -> None:
    db.session.execute(sa.select(Order.id).where(Order.id == order.id).with_for_update())


def _tax_of_gross(gross: int, rate_bp: int) -> int:
    """The tax contained in ``gross`` at ``rate_bp``, rounded half to even like ticketing's prices."""
    return round(Fraction(gross * rate_bp, BASIS_POINTS + rate_bp))


def _rates(order: Order) -> dict[tuple[str, int, int], int]:
    """Each sold ticket's tax rate, by (type, price, tax), as its reservation priced it."""
    from plugins.ticketing.reservations import ReservationLine

    if order.reservation_id is None:
        return {}
    lines = db.session.scalars(sa.select(ReservationLine).where(ReservationLine.reservation_id == order.reservation_id))
    return {(line.ticket_type_id, line.unit_price_minor, line.unit_tax_minor): line.tax_rate_bp for line in lines}


def _ticket_lines(order: Order, tickets: Iterable[Ticket], sign: int) -> list[dict[str, Any]]:
    """One line per ticket type and price among ``tickets``; ``sign`` -1 for a credit note."""
    rates = _rates(order)
    event = db.session.get(Event, order.event_id)
    groups: dict[tuple[str, int, int], list[Ticket]] = defaultdict(list)
    for ticket in tickets:
        groups[(ticket.ticket_type_id, ticket.price_minor, ticket.tax_minor)].append(ticket)
    lines = []
    for (type_id, price, tax), same in groups.items():
        quantity = len(same)
        lines.append({
            "description": same[0].ticket_type.name, "event": event.title if event else "",
            "quantity": quantity, "unit_minor": sign * price,
            "rate_bp": rates.get((type_id, price, tax), same[0].ticket_type.tax_rate_bp),
            "net_minor": sign * (price - tax) * quantity, "tax_minor": sign * tax * quantity,
            "total_minor": sign * price * quantity,
        })
    return lines


def _fee_lines(order: Order) -> list[dict[str, Any]]:
    """The fees the buyer paid on top of the tickets (a service fee, a card payment fee), a line each."""
    lines = []
    with force_locale(general_settings().default_locale):
        for fee in fees_of(order):
            lines.append({
                "description": str(fee.label), "event": "", "quantity": 1, "unit_minor": fee.amount_minor,
                "rate_bp": fee.tax_rate_bp, "net_minor": fee.amount_minor - fee.tax_minor, "tax_minor": fee.tax_minor,
                "total_minor": fee.amount_minor, "fee": True,
            })
    return lines


def _breakdown(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by_rate: dict[int, dict[str, Any]] = {}
    for line in lines:
        total = by_rate.setdefault(line["rate_bp"], {"rate_bp": line["rate_bp"], "net_minor": 0, "tax_minor": 0,
                                                      "total_minor": 0})
        for key in ("net_minor", "tax_minor", "total_minor"):
            total[key] += line[key]
    return [by_rate[rate] for rate in sorted(by_rate)]


def _seller() -> dict[str, str]:
    settings = invoicing_settings()
    name = settings.seller_name or general_settings().display_name or current_tenant().name
    return {"name": name, "address": settings.seller_address, "tax_id": settings.seller_tax_id}


def _buyer(order: Order) -> dict[str, str]:
    """The buyer as checkout asked: name and email, and the answers to the event's questions for the
    billing address (its lines kept) and tax id, "" where the event does not ask or the buyer left them out."""
    billing = billing_details(order)
    return {"name": order.name, "email": order.email, "address": billing[BILLING_ADDRESS], "tax_id": billing[TAX_ID]}


def _issue(order: Order, kind: str, lines: list[dict[str, Any]], **links: Any) -> Document:
    settings = invoicing_settings()
    issued_at = datetime.now(UTC)
    year = issued_at.astimezone(ZoneInfo(general_settings().timezone)).year
    number = numbering.take_number(kind, year, settings)
    breakdown = _breakdown(lines)
    document = Document(
        id=str(uuid.uuid4()), kind=kind, number=number.text, year=number.year, sequence=number.sequence,
        order_id=order.id, order_code=order.code, currency=order.currency,
        net_minor=sum(rate["net_minor"] for rate in breakdown), tax_minor=sum(rate["tax_minor"] for rate in breakdown),
        total_minor=sum(rate["total_minor"] for rate in breakdown), tax_breakdown=breakdown, seller=_seller(),
        buyer=_buyer(order), lines=lines, issued_at=issued_at, **links,
    )
    db.session.add(document)
    db.session.flush()
    details = {"number": document.number, "amount_minor": document.total_minor, "currency": document.currency}
    audit.record(f"invoicing.{kind}_issued", "invoicing_document", document.id, {**details, "order_id": order.id})
    orders.note(order, INVOICE_ISSUED if kind == INVOICE else CREDIT_NOTE_ISSUED, details)
    return document


def issue_invoice(order: Order) -> Document | None:
    """The order's invoice: the one issued before, else a new one, else None for an order that gets none
    (nothing to pay, never paid, or the tenant issues no invoices). The caller commits."""
    _lock(order)
    if (existing := invoice_of(order.id)) is not None:
        return existing
    if order.total_minor <= 0 or order.paid_at is None or not invoicing_settings().issue_invoices:
        return None
    return _issue(order, INVOICE, _ticket_lines(order, order.tickets, 1) + _fee_lines(order))


def _credit_lines(order: Order, invoice: Document, refund: Refund) -> list[dict[str, Any]]:
    """The refunded tickets when the refund is exactly their price; else the amount shared out over the
    tax rates of the invoice's tickets in proportion to what each rate invoiced (the last rate takes the
    rounding). Refunds pay back tickets, never the fees paid on top, so fee lines take no share."""
    chosen = set(refund.ticket_ids)
    tickets = [ticket for ticket in order.tickets if ticket.id in chosen]
    if tickets and sum(ticket.price_minor for ticket in tickets) == refund.amount_minor:
        return _ticket_lines(order, tickets, -1)
    rates = [rate for rate in _breakdown([line for line in invoice.lines if not line.get("fee")])
             if rate["total_minor"] > 0]
    invoiced = sum(rate["total_minor"] for rate in rates)
    lines = []
    left = refund.amount_minor
    with force_locale(general_settings().default_locale):
        description = _("Refund on order %(code)s", code=order.code)
    for index, rate in enumerate(rates):
        if index == len(rates) - 1:
            share = left
        else:
            share = round(Fraction(refund.amount_minor * rate["total_minor"], invoiced))
        left -= share
        tax = _tax_of_gross(share, rate["rate_bp"])
        lines.append({
            "description": description, "event": "", "quantity": 1, "unit_minor": -share,
            "rate_bp": rate["rate_bp"], "net_minor": -(share - tax), "tax_minor": -tax, "total_minor": -share,
        })
    return lines


def credit_note_of(refund_id: str) -> Document | None:
    return db.session.scalars(sa.select(Document).where(Document.refund_id == refund_id)).first()


def issue_credit_note(order: Order, refund: Refund) -> Document | None:
    """The credit note for ``refund`` of ``order``: the one issued before, else a new one with negative
    amounts referring to the order's invoice, else None when there is no invoice to correct or nothing
    was paid back. The caller commits."""
    if refund.order_id != order.id:
        return None
    _lock(order)
    if (existing := credit_note_of(refund.id)) is not None:
        return existing
    invoice = issue_invoice(order)
    if invoice is None or refund.amount_minor <= 0:
        return None
    return _issue(order, CREDIT_NOTE, _credit_lines(order, invoice, refund), refund_id=refund.id,
                  invoice_id=invoice.id)


# --- Announcements -------------------------------------------------------------------------------


def _uuid_or_none(value: Any) -> str | None:
    """``value`` as a UUID's text, or None: a malformed id would fail the query and retry forever."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def handle_outbox_event(announcement: Announcement) -> None:
    """Invoice a paid order (and mail its receipt), credit a refund; each once, however often announced."""
    if announcement.topic not in (PAID_TOPIC, REFUNDED_TOPIC):
        return
    order_id = _uuid_or_none(announcement.payload.get("order_id"))
    if order_id is None:
        return
    order = db.session.scalars(sa.select(Order).where(Order.id == order_id).with_for_update()).first()
    if order is None:
        return
    if announcement.topic == PAID_TOPIC:
        invoice = issue_invoice(order)
        if invoice is not None and invoice.receipt_mailed_at is None and invoicing_settings().mail_receipt:
            from plugins.invoicing.receipt_mail import mail_receipt

            mail_receipt(order, invoice)
        return
    refund_id = _uuid_or_none(announcement.payload.get("refund_id"))
    refund = db.session.get(Refund, refund_id) if refund_id is not None else None
    if refund is not None:
        issue_credit_note(order, refund)
