"""The cart: a reservation holds places for a while (15 minutes by default) at server-computed prices.

A reservation id is a random UUID and works as a bearer secret: whoever holds it may see, order
or drop the reservation, and nobody can guess another's.
"""

from __future__ import annotations

import dataclasses
import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Mapped, mapped_column, relationship, selectinload

from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from bilten_core.tenant_settings import SettingsSpec, get_settings
from plugins.ticketing import catalogue, inventory
from plugins.ticketing.catalogue import EventView, TypeView
from plugins.ticketing.models import Event, TicketType
from plugins.ticketing.pricing import PricedLine, PriceError, UnitPrice, adjusted, price_ticket

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
    review_hours: int = Field(
        24, ge=1, le=720,
        description="Hours staff have to approve or reject an order held for review (never past the event's start).",
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


def _unlocked_types(event_id: str, code: str | None) -> set[str]:
    if not code:
        return set()
    event = db.session.get(Event, event_id)
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


def _check_items(items: dict[str, Item], types: Mapping[str, TypeView], now: datetime, unlocked: set[str]) -> None:
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


def _priced_lines(
    items: dict[str, Item], types: Mapping[str, TypeView], now: datetime, event_id: str, code: str | None
) -> list[inventory.NewLine]:
    prices = {}
    for type_id, item in items.items():
        ticket_type = types[type_id]
        sold = _sold_of(type_id) if any(t.up_to_sold is not None for t in ticket_type.price_tiers) else 0
        try:
            prices[type_id] = price_ticket(ticket_type, now, sold, item.price_minor)
        except PriceError as exc:
            raise _refuse(
                422, "price_" + exc.code,
                _("Pay at least %(minimum)d for %(name)s.", minimum=exc.minimum or 0, name=ticket_type.name)
                if exc.code == "below_minimum" else _("This price is not accepted."),
                ticket_type_id=type_id, minimum_minor=exc.minimum,
            ) from None
    changes = _price_changes(event_id, items, prices, code)
    lines = []
    for type_id, item in items.items():
        price = adjusted(prices[type_id], changes.get(type_id, 0))
        lines.append(inventory.NewLine(
            ticket_type_id=type_id, quantity=item.quantity, unit_price_minor=price.gross,
            unit_tax_minor=price.tax, tax_rate_bp=price.tax_rate_bp, tax_inclusive=price.tax_inclusive,
        ))
    return lines


def _price_changes(
    event_id: str, items: Mapping[str, Item], prices: Mapping[str, UnitPrice], code: str | None
) -> dict[str, int]:
    """The change to each ticket type's price that plugins ask for (``adjust_ticket_prices``)."""
    caller = kernel().plugins.hook_for_tenant("adjust_ticket_prices")
    if not caller.get_hookimpls():
        return {}
    lines = [PricedLine(type_id, item.quantity, prices[type_id].gross) for type_id, item in items.items()]
    changes: dict[str, int] = {}
    for adjustments in caller(event_id=event_id, lines=lines, code=code or None):
        for adjustment in adjustments or ():
            if adjustment.ticket_type_id in items:
                changes[adjustment.ticket_type_id] = changes.get(adjustment.ticket_type_id, 0) + int(
                    adjustment.unit_amount_minor
                )
    return changes


def create_reservation(items: Sequence[Item], unlock_code: str | None = None) -> Reservation:
    """Reserve ``items`` of one event for the tenant's reservation time, or refuse with an :class:`ApiError`.

    Nothing is written unless every item is valid and every pool it draws on had room: sold out is
    a 409 whose details say how many of each ticket type are still available. The catalogue comes
    from this process's snapshot (see :mod:`plugins.ticketing.catalogue`) and sales windows and
    date tiers are judged by the application's clock; the claim and the insert are one statement.
    """
    merged = _merge(items)
    if not merged:
        raise _refuse(422, "empty_reservation", _("Choose at least one ticket."))
    snapshots = catalogue.ticket_types(list(merged), lambda: checkout_settings().reservation_seconds)
    missing = [type_id for type_id in merged if type_id not in snapshots]
    if missing:
        raise _refuse(422, "unknown_ticket_type", _("There is no such ticket on sale."), ticket_type_id=missing[0])
    if len({snapshot.event.id for snapshot in snapshots.values()}) != 1:
        raise _refuse(422, "several_events", _("One reservation holds tickets of one event only."))
    snapshot = next(iter(snapshots.values()))
    event = snapshot.event
    if event.status not in ON_SALE_STATUSES or event.visibility not in BUYABLE_VISIBILITIES:
        raise _refuse(422, "event_not_on_sale", _("Tickets for this event are not on sale."), event_id=event.id)
    now = datetime.now(UTC)
    _check_items(merged, event.types, now, _unlocked_types(event.id, unlock_code))
    lines = _priced_lines(merged, event.types, now, event.id, unlock_code)
    quantities = {type_id: item.quantity for type_id, item in merged.items()}
    if any(not event.types[type_id].pools for type_id in merged):
        raise _sold_out(event, merged, {})
    demand = inventory.demand_by_pool(quantities, {t: list(event.types[t].pools) for t in merged})
    if (free := catalogue.known_short(event.id, demand)) is not None:
        raise _sold_out(event, merged, free)
    event_pools = {pool for ticket_type in event.types.values() for pool in ticket_type.pools}
    reservation_id = str(uuid.uuid4())
    claim = functools.partial(
        inventory.claim_reservation, reservation_id, event.id, demand, snapshot.reservation_seconds, lines, event_pools
    )
    result = claim()
    if not result.complete(demand):
        db.session.rollback()
        # Places skipped because a concurrent claim had them locked may be free again by now: one retry.
        if all(result.free.get(pool, 0) >= wanted for pool, wanted in demand.items()):
            result = claim()
            if not result.complete(demand):
                db.session.rollback()
    if not result.complete(demand):
        available = result.available(demand)
        catalogue.remember_short(event.id, available)
        raise _sold_out(event, merged, available)
    db.session.commit()
    return Reservation(
        id=reservation_id, event_id=event.id, expires_at=result.expires_at, released=False,
        place_count=sum(demand.values()), lines=[ReservationLine(**dataclasses.asdict(line)) for line in lines],
    )


def _parse_id(reservation_id: str) -> str | None:
    try:
        return str(uuid.UUID(reservation_id))
    except ValueError:
        return None


def locked_reservation(reservation_id: str) -> tuple[Reservation | None, datetime]:
    """The reservation with this id (expired or used or not) with its lines, locked for the rest of
    the transaction, and the database's clock, in one query."""
    key = _parse_id(reservation_id)
    row = None
    if key is not None:
        row = db.session.execute(
            sa.select(Reservation, sa.func.now()).where(Reservation.id == key)
            .options(selectinload(Reservation.lines)).with_for_update(of=Reservation)
        ).first()
    if row is None:
        return None, inventory.db_now()
    return row[0], row[1]


def _sold_out(event: EventView, items: Mapping[str, Item], free_by_pool: Mapping[str, int]) -> ApiError:
    """The 409 a buyer gets: what is left of each ticket type they asked for or could see."""
    shown = {type_id for type_id, t in event.types.items() if not t.hidden} | set(items)
    return _refuse(
        409, "sold_out", _("Sorry, not enough tickets are left."),
        available={
            type_id: min((free_by_pool.get(pool, 0) for pool in event.types[type_id].pools), default=0)
            for type_id in sorted(shown)
        },
    )


def live_reservation(reservation_id: str, *, lock: bool = False) -> Reservation:
    """The unexpired reservation with this id, or a 404 (unknown, dropped, ordered) / 410 (expired)."""
    if lock:
        return ensure_live(*locked_reservation(reservation_id))
    key = _parse_id(reservation_id)
    row = None
    if key is not None:
        row = db.session.execute(
            sa.select(Reservation, sa.func.now()).where(Reservation.id == key)
            .options(selectinload(Reservation.lines))
        ).first()
    return ensure_live(row[0], row[1]) if row is not None else ensure_live(None, inventory.db_now())


def ensure_live(reservation: Reservation | None, now: datetime) -> Reservation:
    """``reservation`` if it is still usable at ``now``; else a 404 (unknown, dropped, ordered) or 410 (expired)."""
    if reservation is None or reservation.released:
        raise _refuse(404, "reservation_not_found", _("This reservation does not exist or was already used."))
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
