"""Inventory: places that reservations claim and orders keep, so that no quota is ever oversold.

Every quota owns ``size - held`` rows of ``inventory_places`` and every event with a capacity owns
``capacity`` rows (database triggers keep the numbers right whoever edits the quota). A place is
free when ``order_id`` is empty and ``held_until`` is in the past. Claiming ``n`` tickets of a type
takes ``n`` free places of each of its pools in one transaction with ``FOR UPDATE SKIP LOCKED``;
if any pool is short, the transaction rolls back and nothing is taken. An unpaid reservation
frees its places by itself: its ``held_until`` passes, and the next claim may take them. The
proof is in docs/ticketing.md ("Inventory").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, joinedload, mapped_column

from bilten_core.db import TenantModel, db
from plugins.ticketing.models import TicketType, quota_ticket_types


class InventoryPlace(TenantModel):
    """One sellable place of a pool (a quota, or an event's capacity)."""

    __tablename__ = "inventory_places"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    pool_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False))
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"))
    held_until: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    reservation_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    order_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))


def db_now() -> datetime:
    """The database's clock (the transaction's start), which every expiry is compared with."""
    now: datetime = db.session.execute(sa.select(sa.func.now())).scalar_one()
    return now


def _changed(statement: Any) -> int:
    """Run an UPDATE in the session; how many rows it changed."""
    result = cast("sa.CursorResult[Any]", db.session.execute(statement))
    return int(result.rowcount)


class SoldOut(Exception):
    """A pool had fewer free places than asked; ``short_pools`` names the ones that ran out."""

    def __init__(self, short_pools: list[str]) -> None:
        super().__init__(f"sold out: {short_pools}")
        self.short_pools = short_pools


class PlacesLost(Exception):
    """An order's reservation no longer holds all its places (it expired and someone took some)."""


def _claim_statement(reservation_id: str, pool: str, n: int, until: datetime) -> sa.Update:
    free = (
        sa.select(InventoryPlace.id)
        .where(
            InventoryPlace.pool_id == pool,
            InventoryPlace.order_id.is_(None),
            InventoryPlace.held_until < sa.func.now(),
        )
        .limit(n)
        .with_for_update(skip_locked=True)
    )
    return (
        sa.update(InventoryPlace)
        .where(InventoryPlace.id.in_(free.scalar_subquery()))
        .values(reservation_id=reservation_id, held_until=until)
        .execution_options(synchronize_session=False)
    )


def pools_of(ticket_types: Iterable[TicketType]) -> dict[str, list[str]]:
    """Each ticket type's pools: its quotas, plus its event's capacity unless it is an add-on."""
    types = list(ticket_types)
    pools: dict[str, list[str]] = {t.id: [] for t in types}
    if not types:
        return pools
    rows = db.session.execute(
        sa.select(quota_ticket_types.c.ticket_type_id, quota_ticket_types.c.quota_id).where(
            quota_ticket_types.c.ticket_type_id.in_(list(pools))
        )
    )
    for type_id, quota_id in rows:
        pools[str(type_id)].append(str(quota_id))
    capacities = {t.event_id: t.event.capacity for t in types}
    for ticket_type in types:
        if ticket_type.addon_for_id is None and capacities.get(ticket_type.event_id) is not None:
            pools[ticket_type.id].append(ticket_type.event_id)
    return pools


def demand_by_pool(quantities: Mapping[str, int], pools: Mapping[str, list[str]]) -> dict[str, int]:
    """How many places each pool must give for ``quantities`` (ticket type id -> count)."""
    demand: dict[str, int] = {}
    for type_id, quantity in quantities.items():
        for pool in pools[type_id]:
            demand[pool] = demand.get(pool, 0) + quantity
    return demand


def claim(reservation_id: str, demand: Mapping[str, int], until: datetime) -> None:
    """Take the places ``demand`` asks for, for ``reservation_id``, until ``until``; all or none.

    Runs in the caller's transaction; on :class:`SoldOut` the caller must roll it back, which
    returns whatever this call had already taken.
    """
    short = []
    # A fixed order keeps two buyers of overlapping pools from waiting on each other in a cycle.
    for pool in sorted(demand):
        wanted = demand[pool]
        taken = _changed(_claim_statement(reservation_id, pool, wanted, until))
        if taken < wanted:
            short.append(pool)
            break
    if short:
        raise SoldOut(short)


def free_by_pool(event_id: str) -> dict[str, int]:
    """Free places of each pool of an event, as of now."""
    free = sa.func.count().filter(InventoryPlace.order_id.is_(None), InventoryPlace.held_until < sa.func.now())
    rows = db.session.execute(
        sa.select(InventoryPlace.pool_id, free)
        .where(InventoryPlace.event_id == event_id)
        .group_by(InventoryPlace.pool_id)
    )
    return {str(pool): int(n) for pool, n in rows}


def availability(event_id: str) -> dict[str, int]:
    """How many tickets of each of an event's types can be reserved now: the least of its pools.

    A type that draws on no pool (no quota, no event capacity) is not on sale: 0.
    """
    types = db.session.scalars(
        sa.select(TicketType).where(TicketType.event_id == event_id).options(joinedload(TicketType.event))
    ).all()
    pools = pools_of(types)
    free = free_by_pool(event_id)
    return {
        type_id: min((free.get(pool, 0) for pool in type_pools), default=0)
        for type_id, type_pools in pools.items()
    }


def release_reservation(reservation_id: str) -> int:
    """Give back the places a reservation holds (not those an order already keeps)."""
    changed = _changed(
        sa.update(InventoryPlace)
        .where(InventoryPlace.reservation_id == reservation_id, InventoryPlace.order_id.is_(None))
        .values(reservation_id=None, held_until=sa.text("'-infinity'"))
    )
    return changed


def extend_hold(reservation_id: str, until: datetime, expected: int) -> None:
    """Keep a live reservation's places until ``until`` (a payment deadline); all of them or :class:`PlacesLost`."""
    changed = _changed(
        sa.update(InventoryPlace)
        .where(
            InventoryPlace.reservation_id == reservation_id,
            InventoryPlace.order_id.is_(None),
            InventoryPlace.held_until >= sa.func.now(),
        )
        .values(held_until=until)
    )
    if changed != expected:
        raise PlacesLost(reservation_id)


def sell(reservation_id: str, order_id: str, expected: int) -> None:
    """Turn a live reservation's places into an order's, for good; all of them or :class:`PlacesLost`."""
    changed = _changed(
        sa.update(InventoryPlace)
        .where(
            InventoryPlace.reservation_id == reservation_id,
            InventoryPlace.order_id.is_(None),
            InventoryPlace.held_until >= sa.func.now(),
        )
        .values(order_id=order_id, held_until=sa.text("'infinity'"))
    )
    if changed != expected:
        raise PlacesLost(reservation_id)


def release_order(order_id: str, reservation_id: str | None) -> int:
    """Put an order's places back on sale: those it bought and those its reservation still holds."""
    condition = InventoryPlace.order_id == order_id
    if reservation_id is not None:
        condition = sa.or_(
            condition,
            sa.and_(InventoryPlace.reservation_id == reservation_id, InventoryPlace.order_id.is_(None)),
        )
    changed = _changed(
        sa.update(InventoryPlace)
        .where(condition)
        .values(order_id=None, reservation_id=None, held_until=sa.text("'-infinity'"))
    )
    return changed


def sold_counts(event_id: str) -> dict[str, int]:
    """Places kept by orders, per pool (for dashboards and invariant checks)."""
    sold = sa.func.count().filter(InventoryPlace.order_id.is_not(None))
    rows = db.session.execute(
        sa.select(InventoryPlace.pool_id, sold)
        .where(InventoryPlace.event_id == event_id)
        .group_by(InventoryPlace.pool_id)
    )
    return {str(pool): int(n) for pool, n in rows}
