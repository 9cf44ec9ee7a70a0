"""An event's sales at a glance: sold, reserved and remaining per ticket type, the quotas, revenue, and
orders over time, for the organiser's dashboard and the stats API.

Every figure comes from a handful of ``GROUP BY`` queries, whatever the number of orders:

- **sold**: valid tickets of paid or partially refunded orders; **revenue** is what those tickets cost
  (gross, tax included, and the tax part), in minor units of the tenant's currency;
- **reserved**: tickets in carts that have not expired and in orders awaiting payment whose deadline
  has not passed (both hold their places until then, see :mod:`plugins.ticketing.inventory`);
- **remaining**: what a buyer could reserve now (:func:`inventory.availability`);
- **held**: places the organiser keeps off sale in the quotas a type draws on;
- **orders over time**: sold orders (free ones too) counted by the moment they were placed, per day
  of the event's time zone, or per hour when sales have run for less than three days, with the
  empty days or hours filled in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from plugins.ticketing import inventory, orders
from plugins.ticketing.inventory import InventoryPlace
from plugins.ticketing.models import Event, Quota, quota_ticket_types
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.reservations import Reservation, ReservationLine
from plugins.ticketing.storefront import event_zone

SOLD_STATUSES = (orders.PAID, orders.PARTIALLY_REFUNDED)
DAY = "day"
HOUR = "hour"
# Sales younger than this are drawn hour by hour: a day or two would be one or two bars.
HOURLY_BELOW = timedelta(days=3)


@dataclass(frozen=True)
class TicketTypeStats:
    id: str
    name: str
    sold: int
    reserved: int
    remaining: int
    held: int
    revenue_minor: int


@dataclass(frozen=True)
class QuotaStats:
    id: str
    name: str
    size: int
    held: int
    sold: int
    reserved: int
    free: int


@dataclass(frozen=True)
class Bucket:
    """One day or hour of sales; ``starts_at`` is its first moment in the event's time zone."""

    starts_at: datetime
    orders: int
    revenue_minor: int


@dataclass(frozen=True)
class EventStats:
    event_id: str
    currency: str
    timezone: str
    ticket_types: list[TicketTypeStats]
    quotas: list[QuotaStats]
    revenue_minor: int
    tax_minor: int
    bucket_unit: str  # DAY or HOUR
    buckets: list[Bucket]

    @property
    def sold(self) -> int:
        return sum(item.sold for item in self.ticket_types)

    @property
    def reserved(self) -> int:
        return sum(item.reserved for item in self.ticket_types)

    @property
    def remaining(self) -> int:
        """Tickets still to be had. Types sharing a quota each show its free places, so the sum of their
        ``remaining`` would count those places twice: the quotas' free places cap it."""
        by_type = sum(item.remaining for item in self.ticket_types)
        if not self.quotas:
            return by_type
        return min(by_type, sum(quota.free for quota in self.quotas))


def _sales_by_type(event_id: str) -> dict[str, tuple[int, int, int]]:
    """Ticket type id -> (tickets sold, gross revenue, tax) of the event's sold orders."""
    rows = db.session.execute(
        sa.select(
            Ticket.ticket_type_id, sa.func.count(), sa.func.sum(Ticket.price_minor), sa.func.sum(Ticket.tax_minor)
        )
        .join(Order, Order.id == Ticket.order_id)
        .where(Order.event_id == event_id, Order.status.in_(SOLD_STATUSES), Ticket.valid.is_(True))
        .group_by(Ticket.ticket_type_id)
    )
    return {str(type_id): (int(count), int(gross), int(tax)) for type_id, count, gross, tax in rows}


def _reserved_by_type(event_id: str) -> dict[str, int]:
    """Ticket type id -> tickets held right now by live carts and by orders awaiting payment or review.

    An awaiting-payment (or held) order keeps its reservation's places until the payment deadline, which is then
    the reservation's ``expires_at``; a used or dropped cart is ``released`` and holds nothing.
    """
    awaiting = sa.exists().where(
        Order.reservation_id == Reservation.id, Order.status.in_((orders.AWAITING_PAYMENT, orders.HELD))
    )
    rows = db.session.execute(
        sa.select(ReservationLine.ticket_type_id, sa.func.sum(ReservationLine.quantity))
        .join(Reservation, Reservation.id == ReservationLine.reservation_id)
        .where(
            Reservation.event_id == event_id,
            Reservation.expires_at >= sa.func.now(),
            sa.or_(Reservation.released.is_(False), awaiting),
        )
        .group_by(ReservationLine.ticket_type_id)
    )
    return {str(type_id): int(quantity) for type_id, quantity in rows}


def _held_by_type(event_id: str) -> dict[str, int]:
    """Ticket type id -> places the organiser keeps off sale in the quotas the type draws on."""
    rows = db.session.execute(
        sa.select(quota_ticket_types.c.ticket_type_id, sa.func.sum(Quota.held))
        .join(Quota, Quota.id == quota_ticket_types.c.quota_id)
        .where(Quota.event_id == event_id)
        .group_by(quota_ticket_types.c.ticket_type_id)
    )
    return {str(type_id): int(held) for type_id, held in rows}


def _places_by_pool(event_id: str) -> dict[str, tuple[int, int, int]]:
    """Pool id -> (sold, held by a reservation or an unpaid order, free) places, as of now."""
    unsold = InventoryPlace.order_id.is_(None)
    rows = db.session.execute(
        sa.select(
            InventoryPlace.pool_id,
            sa.func.count().filter(InventoryPlace.order_id.is_not(None)),
            sa.func.count().filter(unsold, InventoryPlace.held_until >= sa.func.now()),
            sa.func.count().filter(unsold, InventoryPlace.held_until < sa.func.now()),
        )
        .where(InventoryPlace.event_id == event_id)
        .group_by(InventoryPlace.pool_id)
    )
    return {str(pool): (int(sold), int(held), int(free)) for pool, sold, held, free in rows}


def _order_span(event_id: str) -> tuple[datetime | None, datetime | None, datetime]:
    """When the first and the last sold order were placed, and the database's clock."""
    first, last, now = db.session.execute(
        sa.select(sa.func.min(Order.created_at), sa.func.max(Order.created_at), sa.func.now()).where(
            Order.event_id == event_id, Order.status.in_(SOLD_STATUSES)
        )
    ).one()
    return first, last, now


def _sales_by_bucket(event_id: str, unit: str, zone_name: str) -> dict[datetime, tuple[int, int]]:
    """Local (wall-clock) start of each day or hour -> (sold orders placed in it, their revenue)."""
    start = sa.func.date_trunc(unit, sa.func.timezone(zone_name, Order.created_at)).label("start")
    rows = db.session.execute(
        sa.select(
            start,
            sa.func.count(sa.distinct(Order.id)),
            sa.func.coalesce(sa.func.sum(Ticket.price_minor).filter(Ticket.valid.is_(True)), 0),
        )
        .join(Ticket, Ticket.order_id == Order.id)
        .where(Order.event_id == event_id, Order.status.in_(SOLD_STATUSES))
        .group_by(start)
    )
    return {bucket: (int(count), int(revenue)) for bucket, count, revenue in rows}


def _local_start(moment: datetime, zone: Any, unit: str) -> datetime:
    """The wall-clock start of the day or hour holding ``moment`` in ``zone`` (naive, like SQL's)."""
    local = moment.astimezone(zone).replace(tzinfo=None)
    if unit == DAY:
        return datetime.combine(local.date(), time())
    return local.replace(minute=0, second=0, microsecond=0)


def _bucket_starts(first: datetime, last: datetime, zone: Any, unit: str) -> list[datetime]:
    """Every local day or hour from the one holding ``first`` to the one holding ``last``.

    Hours are found by stepping through real time, so a daylight-saving change gives the wall-clock
    hours that exist that day: the skipped hour is left out, the repeated one is a single bucket.
    """
    if unit == DAY:
        first_day: date = first.astimezone(zone).date()
        days = (last.astimezone(zone).date() - first_day).days
        return [datetime.combine(first_day + timedelta(days=n), time()) for n in range(days + 1)]
    starts = {_local_start(last, zone, unit)}
    moment = first
    while moment <= last:
        starts.add(_local_start(moment, zone, unit))
        moment += timedelta(hours=1)
    return sorted(starts)


def _buckets(event: Event, zone: Any) -> tuple[str, list[Bucket]]:
    """Sales per day or hour, from publication (or the first order) to now or the event's end."""
    first_order, last_order, now = _order_span(event.id)
    beginnings = [moment for moment in (event.published_at, first_order) if moment is not None]
    if not beginnings:
        return DAY, []
    first = min(beginnings)
    last = max(moment for moment in (min(now, event.ends_at), last_order, first) if moment is not None)
    unit = HOUR if last - first < HOURLY_BELOW else DAY
    sales = _sales_by_bucket(event.id, unit, str(zone))
    # Orders outside the expected range (a clock set back) still get their bar.
    starts = sorted(set(_bucket_starts(first, last, zone, unit)) | set(sales))
    return unit, [Bucket(start.replace(tzinfo=zone), *sales.get(start, (0, 0))) for start in starts]


def event_stats(event: Event) -> EventStats:
    """The sales figures of ``event`` as of now (see the module's docstring for what each one counts)."""
    zone = event_zone(event)
    sales = _sales_by_type(event.id)
    reserved = _reserved_by_type(event.id)
    available = inventory.availability(event.id)
    places = _places_by_pool(event.id)
    held = _held_by_type(event.id)
    types = [
        TicketTypeStats(
            id=ticket_type.id, name=ticket_type.name, sold=sales.get(ticket_type.id, (0, 0, 0))[0],
            reserved=reserved.get(ticket_type.id, 0), remaining=available.get(ticket_type.id, 0),
            held=held.get(ticket_type.id, 0), revenue_minor=sales.get(ticket_type.id, (0, 0, 0))[1],
        )
        for ticket_type in event.ticket_types
    ]
    quotas = [
        QuotaStats(quota.id, quota.name, quota.size, quota.held, *places.get(quota.id, (0, 0, 0)))
        for quota in sorted(event.quotas, key=lambda quota: quota.name)
    ]
    unit, buckets = _buckets(event, zone)
    return EventStats(
        event_id=event.id, currency=general_settings().currency, timezone=str(zone), ticket_types=types,
        quotas=quotas, revenue_minor=sum(gross for _sold, gross, _tax in sales.values()),
        tax_minor=sum(tax for _sold, _gross, tax in sales.values()), bucket_unit=unit,
        buckets=buckets,
    )
