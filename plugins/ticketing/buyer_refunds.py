"""Refunds buyers ask for themselves, within their event's refund policy.

An event allows them (``Event.buyer_refund_hours``) until a number of hours before it starts, or
not at all; the organiser keeps ``Event.refund_fee_percent_bp`` of the tickets' price. A request
refunds the chosen tickets through :func:`refunds.refund`, so the money moves, the tickets are
revoked and the order's history says so as with any refund.

A request is made once however often its form is sent: each confirm page carries a one-time key,
recorded with the refund in the same transaction (its primary key makes a second sending, even a
simultaneous one, wait and then find the first).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core import audit
from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from plugins.ticketing import refunds
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket

REASON = "Requested by the buyer"
FORM_KEY_MAX = 64
BASIS_POINTS = 10_000


class BuyerRefundRequest(TenantModel):
    """A refund a buyer asked for, by the one-time key of the form they sent, and what it paid back."""

    __tablename__ = "buyer_refund_requests"

    form_key: Mapped[str] = mapped_column(sa.String(FORM_KEY_MAX), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    ticket_ids: Mapped[list[str]] = mapped_column(ARRAY(sa.Uuid(as_uuid=False)))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    fee_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


@dataclass(frozen=True)
class Quote:
    """What refunding some tickets pays back: their price, less the organiser's fee."""

    tickets: list[Ticket]
    price_minor: int
    fee_minor: int

    @property
    def amount_minor(self) -> int:
        return self.price_minor - self.fee_minor


def deadline(event: Event) -> datetime | None:
    """Until when buyers may ask for a refund; None when the event allows none."""
    if event.buyer_refund_hours is None:
        return None
    return event.starts_at - timedelta(hours=event.buyer_refund_hours)


def refusal(order: Order, event: Event | None, now: datetime | None = None) -> str | None:
    """Why the buyer cannot ask for a refund of ``order`` now (a sentence for them), or None when they can."""
    if event is None or event.buyer_refund_hours is None:
        return _("The organiser does not take refund requests for this event. Contact them if you cannot come.")
    if event.status == "cancelled":
        return _("This event was cancelled: every order is refunded in full without asking.")
    if order.status not in refunds.REFUNDABLE_STATUSES:
        return _("Only paid orders can be refunded.")
    if not any(ticket.valid for ticket in order.tickets):
        return _("This order has no tickets left to refund.")
    until = deadline(event)
    if until is not None and (now or datetime.now(UTC)) >= until:
        return _("Refunds for this event could be requested until %(hours)d hours before it starts; that time "
                 "has passed.", hours=event.buyer_refund_hours)
    return None


def quote(order: Order, event: Event, ticket_ids: Sequence[str]) -> Quote:
    """What refunding ``ticket_ids`` of ``order`` pays back; a 422 for no ticket or one not refundable."""
    valid = {ticket.id: ticket for ticket in order.tickets if ticket.valid}
    wanted = list(dict.fromkeys(str(ticket_id) for ticket_id in ticket_ids))
    if not wanted:
        raise ApiError(422, "nothing_to_refund", _("Choose at least one ticket to refund."))
    if any(ticket_id not in valid for ticket_id in wanted):
        raise ApiError(422, "unknown_ticket", _("Choose among this order's valid tickets."))
    tickets = [valid[ticket_id] for ticket_id in wanted]
    price = sum(ticket.price_minor for ticket in tickets)
    # Rounded down: the buyer never pays more fee than the policy says.
    fee = price * event.refund_fee_percent_bp // BASIS_POINTS
    return Quote(tickets=tickets, price_minor=price, fee_minor=fee)


def new_form_key() -> str:
    return uuid.uuid4().hex


def _earlier(order: Order, form_key: str) -> BuyerRefundRequest | None:
    """The request already made with ``form_key``; a 409 when it was for another order."""
    existing = db.session.get(BuyerRefundRequest, form_key)
    if existing is not None and existing.order_id != order.id:
        raise ApiError(409, "form_key_reused", _("This form was sent for another order. Open it again."))
    return existing


def request_refund(order: Order, ticket_ids: Sequence[str], form_key: str) -> tuple[BuyerRefundRequest, bool]:
    """Refund the chosen tickets of ``order`` less the fee, as its buyer asked; returns ``(request, created)``.

    Refused with a 409 ``outside_refund_policy`` (its message is for the buyer) when the policy does not
    allow it now; a form key used before returns that request. Committed here, with its audit entry.
    """
    if not form_key or len(form_key) > FORM_KEY_MAX:
        raise ApiError(422, "invalid_form_key", _("This form has expired. Open it again."))
    if (existing := _earlier(order, form_key)) is not None:
        return existing, False
    event = db.session.get(Event, order.event_id)
    reason = refusal(order, event)
    if reason is not None or event is None:
        raise ApiError(409, "outside_refund_policy", reason or "")
    chosen = quote(order, event, ticket_ids)
    if chosen.price_minor > 0 and chosen.amount_minor <= 0:
        raise ApiError(409, "outside_refund_policy",
                       _("The organiser keeps the whole price as a fee: nothing would be paid back."))
    request = BuyerRefundRequest(
        form_key=form_key, order_id=order.id, ticket_ids=[ticket.id for ticket in chosen.tickets],
        amount_minor=chosen.amount_minor, fee_minor=chosen.fee_minor, currency=order.currency,
    )
    # Claimed first: a simultaneous twin waits on this key until the refund below commits, then finds it.
    db.session.add(request)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        if (existing := _earlier(order, form_key)) is not None:
            return existing, False
        raise
    audit.record("ticketing.order.refund_requested", "order", order.id, {
        "code": order.code, "amount_minor": chosen.amount_minor, "fee_minor": chosen.fee_minor,
        "currency": order.currency, "ticket_ids": request.ticket_ids,
    })
    # Without an amount, refunds.refund pays back the tickets' full price. It commits the claim with the refund.
    try:
        refunds.refund(order, ticket_ids=request.ticket_ids,
                       amount_minor=chosen.amount_minor if chosen.fee_minor else None, reason=REASON)
    except Exception:
        db.session.rollback()
        raise
    return request, True
