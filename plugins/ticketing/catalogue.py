"""What a reservation needs to know about an event, kept in each process for a moment.

In a flash sale thousands of buyers a second ask for the same few ticket types; reading the
event, its types, tiers and quotas for each of them would cost more than the claim itself. A
process keeps an immutable snapshot of an event's catalogue for ``SNAPSHOT_SECONDS`` and forgets
it at once when this process commits a change to the catalogue or the checkout settings, so a
change made elsewhere shows within a second. Nothing here guards the inventory invariant: the
claim in the database does that whatever the snapshot says.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session, selectinload

from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant
from bilten_core.tenant_settings import StoredSettings
from plugins.ticketing.models import Event, PriceTier, Quota, TicketType, quota_ticket_types

SNAPSHOT_SECONDS = 1.0
# After a refused claim, buyers of the same pools are told "sold out" from memory for this long
# (places freed in this process end it at once; places freed elsewhere show after this delay).
SHORT_POOL_SECONDS = 0.25


@dataclass(frozen=True)
class TierView:
    price_minor: int
    until: datetime | None
    up_to_sold: int | None


@dataclass(frozen=True)
class TypeView:
    """A ticket type as pricing and the reservation checks read it."""

    id: str
    event_id: str
    name: str
    kind: str
    price_minor: int
    tax_rate_bp: int
    tax_inclusive: bool
    sales_start: datetime | None
    sales_end: datetime | None
    min_per_order: int
    max_per_order: int
    hidden: bool
    addon_for_id: str | None
    price_tiers: tuple[TierView, ...]
    # The pools it draws on: its quotas, and its event's capacity unless it is an add-on.
    pools: tuple[str, ...]


@dataclass(frozen=True)
class EventView:
    id: str
    status: str
    visibility: str
    types: Mapping[str, TypeView]


@dataclass(frozen=True)
class Snapshot:
    """An event's catalogue as read at ``taken_at`` (``time.monotonic()``)."""

    event: EventView
    reservation_seconds: int
    taken_at: float


_lock = threading.Lock()
# (tenant schema, ticket type id) -> the snapshot of its event
_by_type: dict[tuple[str, str], Snapshot] = {}
# (tenant schema, event id) -> (free places per pool seen by a refused claim, when)
_short_events: dict[tuple[str, str], tuple[dict[str, int], float]] = {}


def _load(event_ids: Iterable[str], reservation_seconds: int) -> list[Snapshot]:
    events = db.session.scalars(
        sa.select(Event).where(Event.id.in_(list(event_ids)))
        .options(selectinload(Event.ticket_types).selectinload(TicketType.price_tiers))
    ).all()
    type_ids = [t.id for e in events for t in e.ticket_types]
    quotas: dict[str, list[str]] = {type_id: [] for type_id in type_ids}
    if type_ids:
        rows = db.session.execute(
            sa.select(quota_ticket_types.c.ticket_type_id, quota_ticket_types.c.quota_id)
            .where(quota_ticket_types.c.ticket_type_id.in_(type_ids))
            .order_by(quota_ticket_types.c.quota_id)
        )
        for type_id, quota_id in rows:
            quotas[str(type_id)].append(str(quota_id))
    now = time.monotonic()
    snapshots = []
    for event in events:
        types = {}
        for t in event.ticket_types:
            pools = list(quotas[t.id])
            if t.addon_for_id is None and event.capacity is not None:
                pools.append(event.id)
            types[t.id] = TypeView(
                id=t.id, event_id=event.id, name=t.name, kind=t.kind, price_minor=t.price_minor,
                tax_rate_bp=t.tax_rate_bp, tax_inclusive=t.tax_inclusive, sales_start=t.sales_start,
                sales_end=t.sales_end, min_per_order=t.min_per_order, max_per_order=t.max_per_order,
                hidden=t.hidden, addon_for_id=t.addon_for_id,
                price_tiers=tuple(TierView(p.price_minor, p.until, p.up_to_sold) for p in t.price_tiers),
                pools=tuple(pools),
            )
        view = EventView(id=event.id, status=event.status, visibility=event.visibility, types=types)
        snapshots.append(Snapshot(view, reservation_seconds, now))
    return snapshots


def ticket_types(ids: Iterable[str], reservation_seconds: Any) -> dict[str, Snapshot]:
    """The snapshot of each known ticket type's event, by type id; unknown or malformed ids are left out.

    ``reservation_seconds`` is called (it reads the tenant's settings) only when a snapshot is made.
    """
    schema = current_tenant().schema
    now = time.monotonic()
    found: dict[str, Snapshot] = {}
    missing: list[str] = []
    for type_id in ids:
        snapshot = _by_type.get((schema, type_id))
        if snapshot is not None and now - snapshot.taken_at < SNAPSHOT_SECONDS:
            found[type_id] = snapshot
        else:
            missing.append(type_id)
    if not missing:
        return found
    valid = [type_id for type_id in missing if _is_uuid(type_id)]
    event_ids = (
        set(db.session.scalars(sa.select(TicketType.event_id).where(TicketType.id.in_(valid)))) if valid else set()
    )
    if not event_ids:
        return found
    seconds = int(reservation_seconds())
    with _lock:
        for snapshot in _load(event_ids, seconds):
            for type_id in snapshot.event.types:
                _by_type[(schema, type_id)] = snapshot
    for type_id in missing:
        if (snapshot := _by_type.get((schema, type_id))) is not None:
            found[type_id] = snapshot
    return found


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def remember_short(event_id: str, free_by_pool: Mapping[str, int]) -> None:
    """Note the free places of every pool of an event whose claim was refused, to refuse the next buyers from memory."""
    with _lock:
        _short_events[(current_tenant().schema, event_id)] = (dict(free_by_pool), time.monotonic())


def known_short(event_id: str, demand: Mapping[str, int]) -> dict[str, int] | None:
    """The event's free places per pool if, a moment ago, a pool had fewer than ``demand`` asks; else None."""
    entry = _short_events.get((current_tenant().schema, event_id))
    if entry is None or time.monotonic() - entry[1] >= SHORT_POOL_SECONDS:
        return None
    free = entry[0]
    if all(free.get(pool, 0) >= wanted for pool, wanted in demand.items()):
        return None
    return free


def forget(schema: str | None = None) -> None:
    """Drop every snapshot and note of a short pool (of one tenant, or of all)."""
    with _lock:
        for type_key in [k for k in _by_type if schema is None or k[0] == schema]:
            del _by_type[type_key]
        for event_key in [k for k in _short_events if schema is None or k[0] == schema]:
            del _short_events[event_key]


_CATALOGUE_MODELS = (Event, TicketType, PriceTier, Quota, StoredSettings)
_CHANGED = "ticketing_catalogue_changed"
# Set by inventory code that frees places, so that notes of short pools are dropped on commit.
PLACES_FREED = "ticketing_places_freed"


@orm_event.listens_for(Session, "after_flush")
def _note_catalogue_change(session: Session, _context: Any) -> None:
    if any(isinstance(obj, _CATALOGUE_MODELS) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info[_CHANGED] = True


@orm_event.listens_for(Session, "after_commit")
def _forget_after_change(session: Session) -> None:
    if session.info.pop(_CHANGED, False) or session.info.pop(PLACES_FREED, False):
        forget()


@orm_event.listens_for(Session, "after_soft_rollback")
def _discard_change_note(session: Session, _previous: Any) -> None:
    if not session.in_transaction():
        session.info.pop(_CHANGED, None)
        session.info.pop(PLACES_FREED, None)
