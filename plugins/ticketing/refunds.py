"""Refunds: money paid back on an order, whole or in part, by ticket or by amount.

A refund by ticket revokes those tickets and puts their places back on sale; a refund by amount
leaves the tickets valid. Once everything is refunded (every ticket revoked, or the whole total
paid back) the order is ``refunded``: its remaining tickets are revoked and its places freed too,
since a refunded order admits no one. Every refund locks the order's row, so two refunds of one
order take turns and neither can pay back what the other already did.

What is refunded is counted from the refunds themselves (pending and succeeded ones), not kept on
the order: the order's row lock makes the sum exact when it matters, and a provider marking a
refund failed later cannot leave a second number out of step.

For ``free`` and ``invoice`` orders the money is returned outside Bilten (a bank transfer), so the
refund is recorded as ``succeeded``. Other providers move the money through the
``refund_payment`` hook; their refund is ``pending`` until the provider reports it. A refund
reported by a provider (``reference`` given: its id of the refund) already happened there.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core import outbox
from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from plugins.ticketing import checkout, inventory, orders, payments
from plugins.ticketing.orders import Order, Ticket

PENDING = "pending"
SUCCEEDED = "succeeded"
FAILED = "failed"
STATUSES = (PENDING, SUCCEEDED, FAILED)
# Money outside Bilten: staff record what they paid back themselves.
RECORDED_BY_STAFF = (payments.FREE, payments.INVOICE)
REFUNDABLE_STATUSES = (orders.PAID, orders.PARTIALLY_REFUNDED)
REASON_MAX = 500
REFERENCE_MAX = 200


class Refund(TenantModel):
    __tablename__ = "refunds"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    ticket_ids: Mapped[list[str]] = mapped_column(ARRAY(sa.Uuid(as_uuid=False)), default=list)
    reason: Mapped[str] = mapped_column(sa.Text, default="")
    reference: Mapped[str | None] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


def refunds_of(order: Order) -> list[Refund]:
    return list(
        db.session.scalars(sa.select(Refund).where(Refund.order_id == order.id).order_by(Refund.created_at, Refund.id))
    )


def refunded_minor(order: Order) -> int:
    """What was paid back on the order, or is being paid back (failed refunds do not count)."""
    return int(
        db.session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(Refund.amount_minor), 0))
            .where(Refund.order_id == order.id, Refund.status.in_((PENDING, SUCCEEDED)))
        )
        or 0
    )


def _by_reference(order: Order, reference: str) -> Refund | None:
    existing = db.session.scalars(sa.select(Refund).where(Refund.reference == reference)).first()
    if existing is not None and existing.order_id != order.id:
        raise ApiError(409, "refund_reference_reused", _("This reference belongs to a refund of another order."))
    return existing


def _lock(order: Order) -> None:
    """Lock the order's row and read it, and its tickets, as they are now."""
    db.session.refresh(order, with_for_update=True)
    db.session.scalars(
        sa.select(Ticket).where(Ticket.order_id == order.id).execution_options(populate_existing=True)
    ).all()


def _chosen_tickets(order: Order, ticket_ids: Sequence[str]) -> list[Ticket]:
    by_id = {ticket.id: ticket for ticket in order.tickets}
    wanted = list(dict.fromkeys(str(ticket_id) for ticket_id in ticket_ids))
    unknown = [ticket_id for ticket_id in wanted if ticket_id not in by_id]
    if unknown:
        raise ApiError(422, "unknown_ticket", _("This order has no such ticket."), {"ticket_ids": unknown})
    revoked = [ticket_id for ticket_id in wanted if not by_id[ticket_id].valid]
    if revoked:
        raise ApiError(
            409, "ticket_already_refunded", _("A ticket chosen was already refunded."), {"ticket_ids": revoked}
        )
    return [by_id[ticket_id] for ticket_id in wanted]


def _amount(tickets: Sequence[Ticket], amount_minor: int | None, refundable: int) -> int:
    if amount_minor is None and not tickets:
        raise ApiError(422, "nothing_to_refund", _("Choose tickets or an amount to refund."))
    if amount_minor is not None and amount_minor <= 0:
        raise ApiError(422, "invalid_amount", _("The amount to refund must be more than nothing."))
    amount = amount_minor if amount_minor is not None else sum(ticket.price_minor for ticket in tickets)
    if amount > refundable:
        raise ApiError(
            422, "amount_above_refundable", _("This is more than what can still be refunded on the order."),
            {"refundable_minor": refundable, "amount_minor": amount},
        )
    return amount


def _move_money(order: Order, amount: int, refund_id: str, reference: str | None) -> tuple[str, str | None]:
    """The new refund's status and reference, after asking the provider to pay back when that is its job."""
    if order.payment_provider in RECORDED_BY_STAFF or reference is not None or amount == 0:
        return SUCCEEDED, reference
    answer = kernel().plugins.hook_for_tenant("refund_payment")(order=order, amount_minor=amount, reference=refund_id)
    if answer is None:
        raise ApiError(
            409, "refund_unsupported", _("Refunds through %(provider)s are not available.",
                                         provider=order.payment_provider),
            {"payment_provider": order.payment_provider},
        )
    return PENDING, str(answer)


def refund(
    order: Order,
    *,
    ticket_ids: Sequence[str] = (),
    amount_minor: int | None = None,
    reason: str = "",
    reference: str | None = None,
) -> tuple[Refund, bool]:
    """Refund ``ticket_ids`` of ``order`` and/or ``amount_minor``; returns ``(refund, created)``.

    By ticket, the amount is the tickets' prices unless given. A ``reference`` seen before returns
    that refund (``created`` False) and changes nothing. Committed here.
    """
    if reference is not None and (existing := _by_reference(order, reference)) is not None:
        return existing, False
    _lock(order)
    # A twin with the same reference may have committed while this one waited for the lock.
    if reference is not None and (existing := _by_reference(order, reference)) is not None:
        db.session.rollback()
        return existing, False
    if order.status not in REFUNDABLE_STATUSES:
        raise ApiError(
            409, "order_not_refundable", _("Only paid orders can be refunded; this one is %(status)s.",
                                           status=order.status),
            {"status": order.status},
        )
    tickets = _chosen_tickets(order, ticket_ids)
    already = refunded_minor(order)
    amount = _amount(tickets, amount_minor, order.total_minor - already)
    record = Refund(id=str(uuid.uuid4()), order_id=order.id, amount_minor=amount, currency=order.currency,
                    ticket_ids=[ticket.id for ticket in tickets], reason=reason)
    record.status, record.reference = _move_money(order, amount, record.id, reference)
    db.session.add(record)
    _apply(order, record, tickets, already + amount)
    try:
        db.session.commit()
    except IntegrityError:
        # The reference was recorded meanwhile for another order (this one's twins waited for the lock).
        db.session.rollback()
        if reference is None or (existing := _by_reference(order, reference)) is None:
            raise
        return existing, False
    return record, True


def _apply(order: Order, record: Refund, tickets: Sequence[Ticket], refunded: int) -> None:
    """Revoke the refunded tickets, free their places, move the order on, and say so."""
    chosen = {ticket.id for ticket in tickets}
    still_valid = [ticket for ticket in order.tickets if ticket.valid and ticket.id not in chosen]
    everything = not still_valid or (order.total_minor > 0 and refunded >= order.total_minor)
    revoked = [ticket for ticket in order.tickets if ticket.valid] if everything else list(tickets)
    for ticket in revoked:
        ticket.valid = False
    if everything:
        released = inventory.release_order(order.id, order.reservation_id)
    else:
        released = inventory.release_tickets(order.id, [ticket.ticket_type for ticket in revoked])
    target = orders.REFUNDED if everything else orders.PARTIALLY_REFUNDED
    details: dict[str, Any] = {
        "refund_id": record.id, "amount_minor": record.amount_minor, "currency": record.currency,
        "tickets": len(revoked), "ticket_ids": [ticket.id for ticket in revoked], "places": released,
        "refund_status": record.status,
    }
    if record.reason:
        details["reason"] = record.reason
    if record.reference:
        details["reference"] = record.reference
    orders.transition(order, target, target, details)
    if revoked:
        outbox.announce("ticketing.tickets_revoked", checkout.tickets_payload(order, revoked))
    outbox.announce("ticketing.order_refunded", {
        **checkout.order_payload(order), "refund_id": record.id, "amount_minor": record.amount_minor,
        "refund_status": record.status, "reference": record.reference,
        "ticket_ids": [ticket.id for ticket in revoked], "refunded_minor": refunded,
        "refundable_minor": max(order.total_minor - refunded, 0),
    })


def settle_provider_refund(reference: str, status: str) -> Refund | None:
    """A provider reports how a refund it was asked for ended (``succeeded`` or ``failed``); not committed.

    Returns the refund with that provider ``reference``, or None when Bilten never asked for it.
    Only a pending refund changes, once; the order's history says how it ended. A failed refund
    leaves its tickets revoked: staff settle the money with the buyer.
    """
    record = db.session.scalar(sa.select(Refund).where(Refund.reference == reference).with_for_update())
    if record is None or record.status != PENDING or status not in (SUCCEEDED, FAILED):
        return record
    record.status = status
    order = db.session.get(Order, record.order_id)
    if order is not None:
        orders.note(order, "refund_" + status, {"refund_id": record.id, "reference": reference})
    return record


# Keyed refunds get their id from their key, so the provider sees the same idempotency key every time.
_KEYED_REFUNDS = uuid.UUID("6f1d2c1e-0b7a-4c52-9a55-2f3e1b0c7d41")


def keyed_refund_id(key: str) -> str:
    """The id of the refund made for ``key`` by :func:`refund_everything`."""
    return str(uuid.uuid5(_KEYED_REFUNDS, key))


def refund_everything(order: Order, *, key: str, reason: str = "") -> Refund | None:
    """Pay back all that is still refundable on ``order`` through its provider and revoke every ticket; not committed.

    ``key`` says what the refund is for (``event-cancel-<event id>-<order id>``): the refund's id
    comes from it, so the provider gets the same idempotency key however often this runs, and a
    refund already made for ``key`` is not made again (None). The order's row is locked first.
    Refused (409 ``order_not_refundable``) when the order is not paid; a provider's refusal is its
    :class:`ApiError`.
    """
    _lock(order)
    refund_id = keyed_refund_id(key)
    if db.session.get(Refund, refund_id) is not None:
        return None
    if order.status not in REFUNDABLE_STATUSES:
        raise ApiError(
            409, "order_not_refundable", _("Only paid orders can be refunded; this one is %(status)s.",
                                           status=order.status),
            {"status": order.status},
        )
    tickets = [ticket for ticket in order.tickets if ticket.valid]
    already = refunded_minor(order)
    amount = max(order.total_minor - already, 0)
    record = Refund(id=refund_id, order_id=order.id, amount_minor=amount, currency=order.currency,
                    ticket_ids=[ticket.id for ticket in tickets], reason=reason)
    record.status, record.reference = _move_money(order, amount, record.id, None)
    db.session.add(record)
    _apply(order, record, tickets, already + amount)
    return record
