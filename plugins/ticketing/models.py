"""The catalogue: events, their ticket types and price tiers, and the quotas that cap them.

Money is kept in integer minor units of the tenant's one currency (``general.currency``); tax
rates in basis points (1900 = 19 %). Inventory, reservations and orders live in their own
modules and tables.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bilten_core.db import TenantModel

EVENT_STATUSES = ("draft", "published", "sales_closed", "ended", "cancelled", "postponed")
VISIBILITIES = ("public", "unlisted", "private")
TICKET_KINDS = ("free", "paid", "pay_what_you_want")


def _uuid() -> str:
    return str(uuid.uuid4())


class EventSeries(TenantModel):
    """Recurring dates that share ticket definitions; each date is an :class:`Event` of its own."""

    __tablename__ = "event_series"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=_uuid)
    title: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Event(TenantModel):
    """One sellable date: its own capacity, quotas and lifecycle."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=_uuid)
    slug: Mapped[str] = mapped_column(sa.String(120), unique=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    # Stored already sanitised; rendered as markup.
    description_html: Mapped[str] = mapped_column(sa.Text, default="")
    category: Mapped[str | None] = mapped_column(sa.String(60))
    tags: Mapped[list[str]] = mapped_column(ARRAY(sa.String(40)), default=list)
    venue_name: Mapped[str | None] = mapped_column(sa.String(200))
    venue_address: Mapped[str | None] = mapped_column(sa.String(500))
    latitude: Mapped[Decimal | None] = mapped_column(sa.Numeric(9, 6))
    longitude: Mapped[Decimal | None] = mapped_column(sa.Numeric(9, 6))
    online_url: Mapped[str | None] = mapped_column(sa.String(500))
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    starts_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    visibility: Mapped[str] = mapped_column(sa.String(16), default="public")
    status: Mapped[str] = mapped_column(sa.String(16), default="draft")
    organizer_email: Mapped[str | None] = mapped_column(sa.String(254))
    refund_policy: Mapped[str] = mapped_column(sa.Text, default="")
    # Refunds buyers may ask for themselves: None for none, else until this many hours before the start.
    buyer_refund_hours: Mapped[int | None] = mapped_column(sa.Integer)
    # What the organiser keeps of a buyer's refund, in basis points (500 = 5 %).
    refund_fee_percent_bp: Mapped[int] = mapped_column(sa.Integer, default=0)
    # None: no event-wide cap beyond the quotas.
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    cover_image_url: Mapped[str | None] = mapped_column(sa.String(500))
    series_id: Mapped[str | None] = mapped_column(sa.ForeignKey("event_series.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )

    ticket_types: Mapped[list[TicketType]] = relationship(
        back_populates="event", order_by="TicketType.position", cascade="all, delete-orphan"
    )
    quotas: Mapped[list[Quota]] = relationship(back_populates="event", cascade="all, delete-orphan")


class TicketType(TenantModel):
    __tablename__ = "ticket_types"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=_uuid)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    kind: Mapped[str] = mapped_column(sa.String(24), default="paid")
    # Paid: the price; pay what you want: the minimum; free: 0.
    price_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    tax_rate_bp: Mapped[int] = mapped_column(sa.Integer, default=0)
    tax_inclusive: Mapped[bool] = mapped_column(default=True)
    sales_start: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    sales_end: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    min_per_order: Mapped[int] = mapped_column(sa.Integer, default=1)
    max_per_order: Mapped[int] = mapped_column(sa.Integer, default=10)
    # Hidden types are offered only after a code unlocks them (the code comes through a hook).
    hidden: Mapped[bool] = mapped_column(default=False)
    # An add-on (parking, merchandise) is bought with a ticket of this type.
    addon_for_id: Mapped[str | None] = mapped_column(sa.ForeignKey("ticket_types.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)

    event: Mapped[Event] = relationship(back_populates="ticket_types")
    price_tiers: Mapped[list[PriceTier]] = relationship(
        back_populates="ticket_type", order_by="PriceTier.position", cascade="all, delete-orphan"
    )


class PriceTier(TenantModel):
    """A price that applies until a moment (early bird) or until a number sold (the first 100)."""

    __tablename__ = "price_tiers"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    ticket_type_id: Mapped[str] = mapped_column(sa.ForeignKey("ticket_types.id", ondelete="CASCADE"), index=True)
    price_minor: Mapped[int] = mapped_column(sa.BigInteger)
    until: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    up_to_sold: Mapped[int | None] = mapped_column(sa.Integer)
    position: Mapped[int] = mapped_column(sa.Integer, default=0)

    ticket_type: Mapped[TicketType] = relationship(back_populates="price_tiers")


quota_ticket_types = sa.Table(
    "quota_ticket_types",
    TenantModel.metadata,
    sa.Column("quota_id", sa.ForeignKey("quotas.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ticket_type_id", sa.ForeignKey("ticket_types.id", ondelete="CASCADE"), primary_key=True),
)


class Quota(TenantModel):
    """A pool of places that one or more ticket types draw on; a type's availability is its least quota."""

    __tablename__ = "quotas"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=_uuid)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    size: Mapped[int] = mapped_column(sa.Integer)
    # Places the organiser keeps off sale.
    held: Mapped[int] = mapped_column(sa.Integer, default=0)

    event: Mapped[Event] = relationship(back_populates="quotas")
    ticket_types: Mapped[list[TicketType]] = relationship(secondary=quota_ticket_types)

    __table_args__ = (
        sa.CheckConstraint("size >= 0", name="quota_size_not_negative"),
        sa.CheckConstraint("held >= 0 AND held <= size", name="quota_held_within_size"),
    )
