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

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, joinedload, mapped_column

from bilten_core.db import TenantModel, db
from plugins.ticketing import catalogue
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
    """Run an UPDATE in the session; how many rows it changed.

    No place is ever loaded as an object, so the ORM has nothing to bring up to date afterwards.
    """
    result = cast(
        "sa.CursorResult[Any]", db.session.execute(statement, execution_options={"synchronize_session": False})
    )
    return int(result.rowcount)


class PlacesLost(Exception):
    """An order's reservation no longer holds all its places (it expired and someone took some)."""


@dataclass(frozen=True)
class NewLine:
    """A reservation line to insert with its claim."""

    ticket_type_id: str
    quantity: int
    unit_price_minor: int
    unit_tax_minor: int
    tax_rate_bp: int
    tax_inclusive: bool


@dataclass(frozen=True)
class ClaimResult:
    """What one claim statement did: the expiry it set, the places it took per pool, and, when it
    fell short, the free places of each of the event's pools as the statement found them."""

    expires_at: datetime
    taken: dict[str, int]
    free: dict[str, int]

    def complete(self, demand: Mapping[str, int]) -> bool:
        return all(self.taken.get(pool, 0) == wanted for pool, wanted in demand.items())

    def available(self, demand: Mapping[str, int]) -> dict[str, int]:
        """Free places per pool that a buyer could take right now.

        The statement's snapshot counts places other buyers are claiming (not yet committed) as
        free. A short pool had every place it could lock taken by this claim, so what it took is
        what is really there; the other pools are counted as the snapshot saw them.
        """
        return {
            pool: self.taken[pool] if pool in demand and self.taken[pool] < demand[pool] else free
            for pool, free in self.free.items()
        }


def claim_reservation(
    reservation_id: str,
    event_id: str,
    demand: Mapping[str, int],
    seconds: int,
    lines: Sequence[NewLine],
    event_pools: Iterable[str] = (),
) -> ClaimResult:
    """Claim the places ``demand`` asks for and insert the reservation with its lines: one round trip.

    The reservation row is written only if every pool gave all it was asked; otherwise the caller
    must roll back, which returns the places this statement took. Only then are the free places
    of ``event_pools`` counted (PostgreSQL evaluates those subqueries lazily), so a refusal needs
    no second query and a success pays nothing for them.
    """
    pools = sorted(demand)
    reported = sorted(set(event_pools) | set(pools))
    params: dict[str, Any] = {
        "claiming_reservation": reservation_id, "claiming_event": event_id, "seconds": seconds,
        "place_count": sum(demand.values()),
        **{f"pool_{i}": pool for i, pool in enumerate(pools)},
        **{f"wanted_{i}": demand[pool] for i, pool in enumerate(pools)},
        **{f"reported_{i}": pool for i, pool in enumerate(reported)},
        **{f"line_{name}": [getattr(line, name) for line in lines] for name in _LINE_TYPES},
    }
    row = db.session.connection().execute(_claim_and_insert(len(pools), len(reported)), params).one()._mapping
    return ClaimResult(
        expires_at=row["expires_at"],
        taken={pool: int(row[f"taken_{i}"]) for i, pool in enumerate(pools)},
        free={pool: int(row[f"free_{i}"] or 0) for i, pool in enumerate(reported)},
    )


_UUID = sa.Uuid(as_uuid=False)
_LINE_TYPES: dict[str, sa.types.TypeEngine[Any]] = {
    "ticket_type_id": _UUID, "quantity": sa.Integer(), "unit_price_minor": sa.BigInteger(),
    "unit_tax_minor": sa.BigInteger(), "tax_rate_bp": sa.Integer(), "tax_inclusive": sa.Boolean(),
}


@functools.cache
def _claim_and_insert(pool_count: int, reported_count: int) -> sa.Select[Any]:
    """The statement of :func:`claim_reservation` for so many pools, built once: only parameters vary."""
    from plugins.ticketing.reservations import Reservation, ReservationLine

    # Tables, not mapped classes: a plain Core statement skips the ORM's work on every execution.
    places = InventoryPlace.__table__.c

    reservation_id = sa.bindparam("claiming_reservation", type_=_UUID)
    until = sa.func.now() + sa.func.make_interval(
        0, 0, 0, 0, 0, 0, sa.bindparam("seconds", type_=sa.Integer)
    )
    claims = [
        sa.update(InventoryPlace.__table__)
        .where(
            places.id.in_(
                sa.select(places.id)
                .where(
                    places.pool_id == sa.bindparam(f"pool_{i}", type_=_UUID),
                    places.order_id.is_(None),
                    places.held_until < sa.func.now(),
                )
                .limit(sa.bindparam(f"wanted_{i}", type_=sa.Integer))
                .with_for_update(skip_locked=True)
                .scalar_subquery()
            )
        )
        .values(reservation_id=reservation_id, held_until=until)
        .returning(places.id)
        .cte(f"claim_{i}")
        for i in range(pool_count)
    ]
    counts = sa.select(
        until.label("expires_at"),
        *(
            sa.select(sa.func.count()).select_from(claim).scalar_subquery().label(f"taken_{i}")
            for i, claim in enumerate(claims)
        ),
    ).cte("counts")
    complete = sa.and_(
        *(counts.c[f"taken_{i}"] == sa.bindparam(f"wanted_{i}", type_=sa.Integer) for i in range(pool_count))
    )
    inserted = (
        sa.insert(Reservation.__table__)
        .from_select(
            ["id", "event_id", "expires_at", "released", "place_count"],
            sa.select(
                reservation_id, sa.bindparam("claiming_event", type_=_UUID), counts.c.expires_at, sa.false(),
                sa.bindparam("place_count", type_=sa.Integer),
            ).where(complete),
        )
        .returning(Reservation.__table__.c.id)
        .cte("inserted")
    )
    # Lines travel as one array per column, so that the statement's shape never changes.
    new_lines = sa.func.unnest(
        *(sa.bindparam(f"line_{name}", type_=pg.ARRAY(kind)) for name, kind in _LINE_TYPES.items())
    ).table_valued(*_LINE_TYPES).render_derived(name="new_lines")
    inserted_lines = (
        sa.insert(ReservationLine.__table__)
        .from_select(
            ["reservation_id", *_LINE_TYPES],
            sa.select(inserted.c.id, *(new_lines.c[name] for name in _LINE_TYPES))
            .select_from(inserted).join(new_lines, sa.true()),
        )
        .returning(ReservationLine.__table__.c.id)
        .cte("inserted_lines")
    )
    free = sa.func.count().filter(places.order_id.is_(None), places.held_until < sa.func.now())
    return sa.select(
        counts,
        # A hold is not money: should the server crash before this commit reaches the disk, the claim
        # and the reservation are lost together and the places are simply free. So the commit need
        # not wait for the disk (orders, which are, keep the default).
        sa.func.set_config("synchronous_commit", "off", sa.true()).label("commit_mode"),
        *(
            sa.case(
                (complete, sa.null()),
                else_=sa.select(free)
                .where(places.pool_id == sa.bindparam(f"reported_{i}", type_=_UUID))
                .scalar_subquery(),
            ).label(f"free_{i}")
            for i in range(reported_count)
        ),
    ).add_cte(inserted, inserted_lines)


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
    db.session.info[catalogue.PLACES_FREED] = True
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
    db.session.info[catalogue.PLACES_FREED] = True
    changed = _changed(
        sa.update(InventoryPlace)
        .where(condition)
        .values(order_id=None, reservation_id=None, held_until=sa.text("'-infinity'"))
    )
    return changed


def release_tickets(order_id: str, ticket_types: Sequence[TicketType]) -> int:
    """Put back on sale the places of some of an order's tickets (one ticket per entry of ``ticket_types``).

    A place belongs to the order, not to a ticket: a ticket of a type took one place in each pool
    the type draws on, and places of one pool are alike. So for ``n`` tickets drawing on a pool, any
    ``n`` of the order's places in that pool go back, and the rest stay sold for the tickets kept.
    A pool the type joined after the sale holds none of the order's places and gives back nothing.
    The caller holds the order's row lock, so no other change to these places runs meanwhile.
    """
    counts: dict[str, int] = {}
    for ticket_type in ticket_types:
        counts[ticket_type.id] = counts.get(ticket_type.id, 0) + 1
    demand = demand_by_pool(counts, pools_of({t.id: t for t in ticket_types}.values()))
    released = 0
    for pool, wanted in demand.items():
        places = (
            sa.select(InventoryPlace.id)
            .where(InventoryPlace.pool_id == pool, InventoryPlace.order_id == order_id)
            .limit(wanted)
            .with_for_update()
            .scalar_subquery()
        )
        released += _changed(
            sa.update(InventoryPlace)
            .where(InventoryPlace.id.in_(places))
            .values(order_id=None, reservation_id=None, held_until=sa.text("'-infinity'"))
        )
    if released:
        db.session.info[catalogue.PLACES_FREED] = True
    return released


def sold_counts(event_id: str) -> dict[str, int]:
    """Places kept by orders, per pool (for dashboards and invariant checks)."""
    sold = sa.func.count().filter(InventoryPlace.order_id.is_not(None))
    rows = db.session.execute(
        sa.select(InventoryPlace.pool_id, sold)
        .where(InventoryPlace.event_id == event_id)
        .group_by(InventoryPlace.pool_id)
    )
    return {str(pool): int(n) for pool, n in rows}


def reclaim_for_order(order_id: str, ticket_types: Sequence[TicketType]) -> None:
    """Sell an expired order free places again, one per pool for each of ``ticket_types`` (a late payment).

    All of them or :class:`PlacesLost`, in which case the caller rolls back what this took. Places
    other buyers are claiming right now are skipped, as a new reservation would skip them.
    """
    counts: dict[str, int] = {}
    for ticket_type in ticket_types:
        counts[ticket_type.id] = counts.get(ticket_type.id, 0) + 1
    demand = demand_by_pool(counts, pools_of({t.id: t for t in ticket_types}.values()))
    for pool, wanted in demand.items():
        free = (
            sa.select(InventoryPlace.id)
            .where(
                InventoryPlace.pool_id == pool,
                InventoryPlace.order_id.is_(None),
                InventoryPlace.held_until < sa.func.now(),
            )
            .limit(wanted)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        taken = _changed(
            sa.update(InventoryPlace)
            .where(InventoryPlace.id.in_(free))
            .values(order_id=order_id, held_until=sa.text("'infinity'"))
        )
        if taken != wanted:
            raise PlacesLost(order_id)
