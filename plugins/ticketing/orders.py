"""Orders and tickets: a guarded state machine whose every step is written to the order's history.

::

    reserved ──► awaiting_payment ──► paid ──► partially_refunded ──► refunded
       │  └──────────────────────────► │  └──────────────────────────► │
       ├──► cancelled ◄── (from awaiting_payment, paid, partially_refunded)
       └──► expired   ◄── (from awaiting_payment, once its payment deadline passed)
             └──► paid      (a payment that arrived late, while its places were still free)

    reserved ──► held_for_review ──► awaiting_payment | paid   (staff approved it)
                        ├──► cancelled                         (staff rejected it)
                        └──► expired                           (nobody decided before its deadline)
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bilten_core import audit
from bilten_core.db import TenantModel
from bilten_core.errors import ApiError
from plugins.ticketing.models import TicketType

RESERVED = "reserved"
AWAITING_PAYMENT = "awaiting_payment"
PAID = "paid"
PARTIALLY_REFUNDED = "partially_refunded"
REFUNDED = "refunded"
CANCELLED = "cancelled"
EXPIRED = "expired"
HELD = "held_for_review"
STATUSES = (RESERVED, HELD, AWAITING_PAYMENT, PAID, PARTIALLY_REFUNDED, REFUNDED, CANCELLED, EXPIRED)
TRANSITIONS: dict[str, frozenset[str]] = {
    RESERVED: frozenset({HELD, AWAITING_PAYMENT, PAID, CANCELLED, EXPIRED}),
    HELD: frozenset({AWAITING_PAYMENT, PAID, CANCELLED, EXPIRED}),
    AWAITING_PAYMENT: frozenset({PAID, CANCELLED, EXPIRED}),
    PAID: frozenset({PARTIALLY_REFUNDED, REFUNDED, CANCELLED}),
    PARTIALLY_REFUNDED: frozenset({PARTIALLY_REFUNDED, REFUNDED, CANCELLED}),
    REFUNDED: frozenset(),
    CANCELLED: frozenset(),
    EXPIRED: frozenset({PAID}),
}
# Orders in these states keep their tickets (and count towards a buyer's limit).
ACTIVE_STATUSES = (RESERVED, HELD, AWAITING_PAYMENT, PAID, PARTIALLY_REFUNDED)

# No 0/O, 1/I/L, no vowels-but-A/E... just unambiguous when read aloud or typed from paper.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def new_order_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def new_ticket_code() -> str:
    return secrets.token_urlsafe(24)


class Order(TenantModel):
    __tablename__ = "orders"
    # The INSERT returns the server's timestamps, so a new order can be answered without reading it back.
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="RESTRICT"))
    reservation_id: Mapped[str | None] = mapped_column(sa.ForeignKey("reservations.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(200), unique=True)
    status: Mapped[str] = mapped_column(sa.String(24))
    email: Mapped[str] = mapped_column(sa.String(254))
    name: Mapped[str] = mapped_column(sa.String(200))
    total_minor: Mapped[int] = mapped_column(sa.BigInteger)
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    payment_provider: Mapped[str] = mapped_column(sa.String(40))
    payment_due_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # The provider's page where the buyer pays (while the order awaits payment), if it has one.
    payment_url: Mapped[str | None] = mapped_column(sa.Text)
    paid_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    answers: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)  # per-order questions, by id
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )

    tickets: Mapped[list[Ticket]] = relationship(
        back_populates="order", order_by="Ticket.position", cascade="all, delete-orphan"
    )
    history: Mapped[list[OrderHistory]] = relationship(
        back_populates="order", order_by="OrderHistory.id", cascade="all, delete-orphan"
    )


class Ticket(TenantModel):
    __tablename__ = "tickets"
    __mapper_args__ = {"eager_defaults": True}

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    ticket_type_id: Mapped[str] = mapped_column(sa.ForeignKey("ticket_types.id", ondelete="RESTRICT"))
    # Unguessable until signed tickets replace it.
    code: Mapped[str] = mapped_column(sa.String(64), unique=True, default=new_ticket_code)
    price_minor: Mapped[int] = mapped_column(sa.BigInteger)
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger)
    attendee_name: Mapped[str | None] = mapped_column(sa.String(200))
    attendee_email: Mapped[str | None] = mapped_column(sa.String(254))
    valid: Mapped[bool] = mapped_column(default=True)
    answers: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)  # per-ticket questions, by id
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    order: Mapped[Order] = relationship(back_populates="tickets")
    ticket_type: Mapped[TicketType] = relationship()


class OrderHistory(TenantModel):
    __tablename__ = "order_history"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(sa.String(60))
    from_status: Mapped[str | None] = mapped_column(sa.String(24))
    to_status: Mapped[str | None] = mapped_column(sa.String(24))
    actor: Mapped[str | None] = mapped_column(sa.String(200))
    details: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    order: Mapped[Order] = relationship(back_populates="history")


class IllegalTransition(ApiError):
    def __init__(self, order: Order, to_status: str) -> None:
        super().__init__(
            409, "illegal_transition",
            _("An order that is %(status)s cannot become %(target)s.", status=order.status, target=to_status),
            {"status": order.status, "target": to_status},
        )


def actor_label() -> str | None:
    """Who is acting now, as order history records it (``user:<id>``, ``job:<id>``, ``anonymous``...)."""
    actor = audit.current_actor()
    return f"{actor.type}:{actor.id}" if actor.id else actor.type


def note(order: Order, action: str, details: dict[str, Any] | None = None) -> None:
    """Add a line to the order's history (and the audit trail) without changing its status."""
    order.history.append(OrderHistory(action=action, actor=actor_label(), details=details or {}))
    audit.record("ticketing.order." + action, "order", order.id, details or {})


def transition(order: Order, to_status: str, action: str, details: dict[str, Any] | None = None) -> None:
    """Move ``order`` to ``to_status`` if the state machine allows it, writing history and audit."""
    if to_status not in TRANSITIONS.get(order.status, frozenset()):
        raise IllegalTransition(order, to_status)
    from_status = order.status
    order.status = to_status
    order.history.append(
        OrderHistory(
            action=action, from_status=from_status, to_status=to_status, actor=actor_label(),
            details=details or {},
        )
    )
    audit.record(
        "ticketing.order." + action, "order", order.id, {"status": [from_status, to_status], **(details or {})}
    )
