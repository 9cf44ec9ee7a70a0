"""The cart: a reservation holds places for a while (15 minutes by default) at server-computed prices.

A reservation id is a random UUID and works as a bearer secret: whoever holds it may see, order
or drop the reservation, and nobody can guess another's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, joinedload, mapped_column, relationship, selectinload

from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from bilten_core.tenant_settings import SettingsSpec, get_settings
from plugins.ticketing import inventory
from plugins.ticketing.models import Event, TicketType
from plugins.ticketing.pricing import PriceError, price_ticket

SETTINGS_NAMESPACE = "checkout"
ON_SALE_STATUSES = ("published",)
BUYABLE_VISIBILITIES = ("public", "unlisted")
# No single order needs more, whatever a ticket type allows.
MAX_QUANTITY = 1000


class CheckoutSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    reservation_seconds: int = Field(
        900, ge=1, le=86_400, description="How long chosen tickets stay reserved before they go back on sale."
    )
    invoice_payment_days: int = Field(
        14, ge=1, le=90, description="Days an invoice order keeps its tickets while awaiting payment."
    )
    max_tickets_per_buyer: int = Field(
        0, ge=0, le=10_000, description="Most tickets one email address may buy per event (0: no limit)."
    )


SETTINGS = SettingsSpec(SETTINGS_NAMESPACE, CheckoutSettings, lazy_gettext("Checkout"))


def checkout_settings() -> CheckoutSettings:
    settings = get_settings(SETTINGS_NAMESPACE)
    assert isinstance(settings, CheckoutSettings)
    return settings


class Reservation(TenantModel):
    __tablename__ = "reservations"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    released: Mapped[bool] = mapped_column(default=False)
    place_count: Mapped[int] = mapped_column(sa.Integer)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    lines: Mapped[list[ReservationLine]] = relationship(
        back_populates="reservation", order_by="ReservationLine.id", cascade="all, delete-orphan"
    )

    @property
    def total_minor(self) -> int:
        return sum(line.total_minor for line in self.lines)

    @property
    def tax_minor(self) -> int:
        return sum(line.unit_tax_minor * line.quantity for line in self.lines)

    @property
    def ticket_count(self) -> int:
        return sum(line.quantity for line in self.lines)


class ReservationLine(TenantModel):
    __tablename__ = "reservation_lines"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    reservation_id: Mapped[str] = mapped_column(sa.ForeignKey("reservations.id", ondelete="CASCADE"))
    ticket_type_id: Mapped[str] = mapped_column(sa.ForeignKey("ticket_types.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(sa.Integer)
    # What the buyer pays per ticket, tax included; the tax part of it.
    unit_price_minor: Mapped[int] = mapped_column(sa.BigInteger)
    unit_tax_minor: Mapped[int] = mapped_column(sa.BigInteger)
    tax_rate_bp: Mapped[int] = mapped_column(sa.Integer)
    tax_inclusive: Mapped[bool] = mapped_column()

    reservation: Mapped[Reservation] = relationship(back_populates="lines")
    ticket_type: Mapped[TicketType] = relationship()

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


@dataclass(frozen=True)
class Item:
    ticket_type_id: str
    quantity: int
    price_minor: int | None = None


def _refuse(status: int, code: str, message: str, **details: Any) -> ApiError:
    return ApiError(status, code, message, details)


def _unlocked_types(event: Event, code: str | None) -> set[str]:
    if not code:
        return set()
    caller = kernel().plugins.hook_for_tenant("unlock_ticket_types")
    unlocked: set[str] = set()
    for ids in caller(event=event, code=code):
        unlocked.update(str(i) for i in ids or ())
    return unlocked


def _sold_of(ticket_type_id: str) -> int:
    from plugins.ticketing.orders import Ticket

    return int(
        db.session.scalar(
            sa.select(sa.func.count()).select_from(Ticket).where(
                Ticket.ticket_type_id == ticket_type_id, Ticket.valid.is_(True)
            )
        )
        or 0
    )


def _merge(items: Iterable[Item]) -> dict[str, Item]:
    merged: dict[str, Item] = {}
    for item in items:
        previous = merged.get(item.ticket_type_id)
        if previous is not None:
            item = Item(item.ticket_type_id, previous.quantity + item.quantity, item.price_minor)
        merged[item.ticket_type_id] = item
    return merged


def _load_types(ids: Sequence[str]) -> tuple[dict[str, TicketType], datetime]:
    """The ticket types with these ids, with their events and tiers, and the database's clock: one query."""
    valid_ids = []
    for type_id in ids:
        try:
            valid_ids.append(str(uuid.UUID(type_id)))
        except ValueError:
            raise _refuse(
                422, "unknown_ticket_type", _("There is no such ticket on sale."), ticket_type_id=type_id
            ) from None
    rows = db.session.execute(
        sa.select(TicketType, sa.func.now())
        .where(TicketType.id.in_(valid_ids))
        .options(joinedload(TicketType.event), joinedload(TicketType.price_tiers))
    ).unique().all()
    now = rows[0][1] if rows else inventory.db_now()
    return {row[0].id: row[0] for row in rows}, now


def _check_items(
    items: dict[str, Item], types: dict[str, TicketType], event: Event, now: datetime, unlocked: set[str]
) -> None:
    for type_id, item in items.items():
        ticket_type = types[type_id]
        if ticket_type.hidden and type_id not in unlocked:
            raise _refuse(422, "unknown_ticket_type", _("There is no such ticket on sale."), ticket_type_id=type_id)
        if (ticket_type.sales_start and now < ticket_type.sales_start) or (
            ticket_type.sales_end and now >= ticket_type.sales_end
        ):
            raise _refuse(
                422, "not_on_sale", _("%(name)s is not on sale at the moment.", name=ticket_type.name),
                ticket_type_id=type_id,
                sales_start=ticket_type.sales_start.isoformat() if ticket_type.sales_start else None,
                sales_end=ticket_type.sales_end.isoformat() if ticket_type.sales_end else None,
            )
        if not ticket_type.min_per_order <= item.quantity <= ticket_type.max_per_order:
            raise _refuse(
                422, "quantity_out_of_range",
                _("Choose between %(min)d and %(max)d of %(name)s.", min=ticket_type.min_per_order,
                  max=ticket_type.max_per_order, name=ticket_type.name),
                ticket_type_id=type_id, min=ticket_type.min_per_order, max=ticket_type.max_per_order,
            )
        if ticket_type.addon_for_id is not None and ticket_type.addon_for_id not in items:
            raise _refuse(
                422, "addon_without_ticket",
                _("%(name)s can only be bought with a ticket it belongs to.", name=ticket_type.name),
                ticket_type_id=type_id, addon_for=ticket_type.addon_for_id,
            )


def create_reservation(items: Sequence[Item], unlock_code: str | None = None) -> Reservation:
    """Reserve ``items`` of one event for the tenant's reservation time, or refuse with an :class:`ApiError`.

    Nothing is written unless every item is valid and every pool it draws on had room: sold out is
    a 409 whose details say how many of each ticket type are still available.
    """
    merged = _merge(items)
    if not merged:
        raise _refuse(422, "empty_reservation", _("Choose at least one ticket."))
    types, now = _load_types(list(merged))
    missing = [type_id for type_id in merged if type_id not in types]
    if missing:
        raise _refuse(422, "unknown_ticket_type", _("There is no such ticket on sale."), ticket_type_id=missing[0])
    event_ids = {t.event_id for t in types.values()}
    if len(event_ids) != 1:
        raise _refuse(422, "several_events", _("One reservation holds tickets of one event only."))
    event = next(iter(types.values())).event
    if event.status not in ON_SALE_STATUSES or event.visibility not in BUYABLE_VISIBILITIES:
        raise _refuse(422, "event_not_on_sale", _("Tickets for this event are not on sale."), event_id=event.id)
    _check_items(merged, types, event, now, _unlocked_types(event, unlock_code))

    reservation = Reservation(
        id=str(uuid.uuid4()),
        event_id=event.id,
        expires_at=now + timedelta(seconds=checkout_settings().reservation_seconds),
    )
    for type_id, item in merged.items():
        ticket_type = types[type_id]
        sold = _sold_of(type_id) if any(t.up_to_sold is not None for t in ticket_type.price_tiers) else 0
        try:
            price = price_ticket(ticket_type, now, sold, item.price_minor)
        except PriceError as exc:
            raise _refuse(
                422, "price_" + exc.code,
                _("Pay at least %(minimum)d for %(name)s.", minimum=exc.minimum or 0, name=ticket_type.name)
                if exc.code == "below_minimum" else _("This price is not accepted."),
                ticket_type_id=type_id, minimum_minor=exc.minimum,
            ) from None
        reservation.lines.append(
            ReservationLine(
                ticket_type_id=type_id, quantity=item.quantity, unit_price_minor=price.gross,
                unit_tax_minor=price.tax, tax_rate_bp=price.tax_rate_bp, tax_inclusive=price.tax_inclusive,
            )
        )
    pools = inventory.pools_of(types.values())
    quantities = {t: i.quantity for t, i in merged.items()}
    demand = inventory.demand_by_pool(quantities, pools)
    reservation.place_count = sum(demand.values())
    if any(not type_pools for type_pools in pools.values()):
        raise _sold_out(event.id, merged)
    try:
        inventory.claim(reservation.id, demand, reservation.expires_at)
    except inventory.SoldOut:
        db.session.rollback()
        available = inventory.availability(event.id)
        # Places skipped because a concurrent claim had them locked may be free again by now: one retry.
        if not all(available.get(t, 0) >= q for t, q in quantities.items()):
            raise _sold_out(event.id, merged, available) from None
        reservation = _renewed(reservation)
        try:
            inventory.claim(reservation.id, demand, reservation.expires_at)
        except inventory.SoldOut:
            db.session.rollback()
            raise _sold_out(event.id, merged) from None
    db.session.add(reservation)
    db.session.flush()
    # Detached before the commit, the reservation keeps its loaded values: no reload to answer.
    db.session.expunge(reservation)
    db.session.commit()
    return reservation


def _parse_id(reservation_id: str) -> str | None:
    try:
        return str(uuid.UUID(reservation_id))
    except ValueError:
        return None


def locked_reservation(reservation_id: str) -> Reservation | None:
    """The reservation with this id, expired or used or not, locked for the rest of the transaction."""
    key = _parse_id(reservation_id)
    if key is None:
        return None
    return db.session.scalars(sa.select(Reservation).where(Reservation.id == key).with_for_update()).first()


def _sold_out(event_id: str, items: Mapping[str, Item], available: Mapping[str, int] | None = None) -> ApiError:
    """The 409 a buyer gets: what is left of each ticket type they asked for or could see."""
    if available is None:
        available = inventory.availability(event_id)
    hidden = set(db.session.scalars(
        sa.select(TicketType.id).where(TicketType.event_id == event_id, TicketType.hidden.is_(True))
    ))
    db.session.rollback()
    shown = {type_id for type_id in available if type_id not in hidden} | set(items)
    return _refuse(
        409, "sold_out", _("Sorry, not enough tickets are left."),
        available={type_id: available.get(type_id, 0) for type_id in sorted(shown)},
    )


def _renewed(reservation: Reservation) -> Reservation:
    """A copy of an unsaved reservation for a second attempt in a new transaction, with a fresh expiry."""
    now = inventory.db_now()
    lines = [
        ReservationLine(
            ticket_type_id=line.ticket_type_id, quantity=line.quantity, unit_price_minor=line.unit_price_minor,
            unit_tax_minor=line.unit_tax_minor, tax_rate_bp=line.tax_rate_bp, tax_inclusive=line.tax_inclusive,
        )
        for line in reservation.lines
    ]
    return Reservation(
        id=reservation.id, event_id=reservation.event_id, place_count=reservation.place_count,
        expires_at=now + timedelta(seconds=checkout_settings().reservation_seconds), lines=lines,
    )


def live_reservation(reservation_id: str, *, lock: bool = False) -> Reservation:
    """The unexpired reservation with this id, or a 404 (unknown, dropped, ordered) / 410 (expired)."""
    key = _parse_id(reservation_id)
    query = sa.select(Reservation).where(Reservation.id == key).options(selectinload(Reservation.lines))
    if lock:
        query = query.with_for_update()
    reservation = db.session.scalars(query).first() if key else None
    if reservation is None or reservation.released:
        raise _refuse(404, "reservation_not_found", _("This reservation does not exist or was already used."))
    now = inventory.db_now()
    if reservation.expires_at <= now:
        raise _refuse(
            410, "reservation_expired", _("This reservation has expired; its tickets went back on sale."),
            expired_at=reservation.expires_at.isoformat(),
        )
    return reservation


def drop_reservation(reservation_id: str) -> None:
    """Give the reservation's tickets back at once."""
    reservation = live_reservation(reservation_id, lock=True)
    inventory.release_reservation(reservation.id)
    reservation.released = True
    db.session.commit()
