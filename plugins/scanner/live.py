"""An event's door at a glance: arrivals per 15 minutes, by gate and ticket type, checked in against
sold, no-shows, flagged conflicts and suspicious patterns, for the live page, its API and its alerts.

Every figure is a few ``GROUP BY`` or window queries over ``scanner_check_ins`` (genuine tickets) and
``scanner_scan_log`` (every scan), whatever the size of the crowd:

- **arrivals**: admissions (``result = admitted``, re-entries included) by the device's scan time,
  in 15-minute slots, the empty ones between the first and the last filled in;
- **checked in**: distinct tickets admitted at least once; **sold**: valid tickets of paid (or partly
  refunded) orders, as on ticketing's dashboard;
- **no-shows**: sold tickets never admitted, counted once the event has started;
- **conflicts**: check-ins an offline sync flagged (:mod:`plugins.scanner.offline`);
- **the same ticket at two gates** within :data:`TWO_GATES_WINDOW`, and **bursts of forged codes**:
  :data:`BURST_SIZE` forged or unreadable codes from one device within :data:`BURST_WINDOW`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bilten_core.db import db
from plugins.scanner.models import IN, CheckIn, Device, Gate, ScanLogEntry, TicketState
from plugins.scanner.reading import ADMITTED, FORGED, UNKNOWN
from plugins.ticketing.event_stats import SOLD_STATUSES
from plugins.ticketing.models import Event, TicketType
from plugins.ticketing.orders import Order, Ticket

SLOT = timedelta(minutes=15)
TWO_GATES_WINDOW = timedelta(seconds=60)
BURST_SIZE = 5
BURST_WINDOW = timedelta(minutes=1)
BAD_CODES = (FORGED, UNKNOWN)
EXPORT_BATCH = 1000
MAX_LISTED = 100  # conflicts and patterns listed on the page; the counts are always whole


@dataclass(frozen=True)
class Slot:
    starts_at: datetime
    arrivals: int


@dataclass(frozen=True)
class GateFigures:
    id: str
    name: str
    arrivals: int
    tickets: int


@dataclass(frozen=True)
class TypeFigures:
    id: str
    name: str
    sold: int
    checked_in: int


@dataclass(frozen=True)
class Conflict:
    check_in_id: int
    ticket_id: str
    at: datetime
    gate: str
    device: str | None
    reason: str


@dataclass(frozen=True)
class TwoGates:
    ticket_id: str
    first_at: datetime
    first_gate: str
    second_at: datetime
    second_gate: str


@dataclass(frozen=True)
class Burst:
    device_id: str
    device: str
    starts_at: datetime
    bad_codes: int  # forged or unreadable codes from this device at this event, in all


@dataclass(frozen=True)
class LiveFigures:
    event_id: str
    started: bool
    slots: list[Slot]
    gates: list[GateFigures]
    ticket_types: list[TypeFigures]
    inside: int
    never_admitted: int  # sold tickets with no admission yet
    conflicts: list[Conflict]
    conflict_count: int
    two_gates: list[TwoGates]
    bursts: list[Burst]

    @property
    def sold(self) -> int:
        return sum(row.sold for row in self.ticket_types)

    @property
    def checked_in(self) -> int:
        return sum(row.checked_in for row in self.ticket_types)

    @property
    def arrivals(self) -> int:
        return sum(slot.arrivals for slot in self.slots)

    @property
    def no_shows(self) -> int | None:
        """Sold tickets never admitted; None before the event starts, when nobody can have missed it yet."""
        return self.never_admitted if self.started else None


def live_figures(event: Event, now: datetime) -> LiveFigures:
    event_id = str(event.id)
    conflicts = _conflicts(event_id)
    return LiveFigures(
        event_id=event_id, started=event.starts_at <= now, slots=_slots(event_id), gates=_gates(event_id),
        ticket_types=_ticket_types(event_id),
        inside=int(db.session.scalar(sa.select(sa.func.count()).where(
            TicketState.event_id == event_id, TicketState.inside.is_(True))) or 0),
        never_admitted=_never_admitted(event_id),
        conflicts=conflicts[:MAX_LISTED], conflict_count=len(conflicts), two_gates=two_gate_scans(event_id),
        bursts=bursts(event_id),
    )


def _admissions(event_id: str) -> list[sa.ColumnElement[bool]]:
    return [CheckIn.event_id == event_id, CheckIn.direction == IN, CheckIn.result == ADMITTED]


def _slots(event_id: str) -> list[Slot]:
    seconds = int(SLOT.total_seconds())
    start = sa.func.to_timestamp(sa.func.floor(sa.extract("epoch", CheckIn.scanned_at) / seconds) * seconds)
    counts = {
        at: int(count) for at, count in db.session.execute(
            sa.select(start, sa.func.count()).where(*_admissions(event_id)).group_by(start)
        )
    }
    if not counts:
        return []
    first, last = min(counts), max(counts)
    return [Slot(at, counts.get(at, 0)) for at in _every_slot(first, last)]


def _every_slot(first: datetime, last: datetime) -> Iterator[datetime]:
    at = first
    while at <= last:
        yield at
        at += SLOT


def _gates(event_id: str) -> list[GateFigures]:
    rows = db.session.execute(
        sa.select(Gate.id, Gate.name, sa.func.count(CheckIn.id), sa.func.count(sa.distinct(CheckIn.ticket_id)))
        .outerjoin(CheckIn, sa.and_(CheckIn.gate_id == Gate.id, *_admissions(event_id)))
        .where(Gate.event_id == event_id)
        .group_by(Gate.id, Gate.name)
        .order_by(Gate.name)
    )
    return [GateFigures(str(gate_id), name, int(arrivals), int(tickets)) for gate_id, name, arrivals, tickets in rows]


def _ticket_types(event_id: str) -> list[TypeFigures]:
    sold = dict(db.session.execute(
        sa.select(Ticket.ticket_type_id, sa.func.count())
        .join(Order, Order.id == Ticket.order_id)
        .where(Order.event_id == event_id, Order.status.in_(SOLD_STATUSES), Ticket.valid.is_(True))
        .group_by(Ticket.ticket_type_id)
    ).all())
    checked_in = dict(db.session.execute(
        sa.select(Ticket.ticket_type_id, sa.func.count(sa.distinct(CheckIn.ticket_id)))
        .join(Ticket, Ticket.id == CheckIn.ticket_id)
        .where(*_admissions(event_id))
        .group_by(Ticket.ticket_type_id)
    ).all())
    types = db.session.execute(
        sa.select(TicketType.id, TicketType.name).where(TicketType.event_id == event_id).order_by(TicketType.name)
    )
    return [TypeFigures(str(type_id), name, int(sold.get(type_id, 0)), int(checked_in.get(type_id, 0)))
            for type_id, name in types]


def _never_admitted(event_id: str) -> int:
    """Sold tickets without an admission (a ticket refunded after it went in is not sold, and not counted)."""
    admitted = sa.exists().where(CheckIn.ticket_id == Ticket.id, *_admissions(event_id))
    return int(db.session.scalar(
        sa.select(sa.func.count()).select_from(Ticket).join(Order, Order.id == Ticket.order_id)
        .where(Order.event_id == event_id, Order.status.in_(SOLD_STATUSES), Ticket.valid.is_(True), ~admitted)
    ) or 0)


def _conflicts(event_id: str) -> list[Conflict]:
    rows = db.session.execute(
        sa.select(CheckIn.id, CheckIn.ticket_id, CheckIn.scanned_at, Gate.name, Device.name, CheckIn.conflict_reason)
        .join(Gate, Gate.id == CheckIn.gate_id)
        .outerjoin(Device, Device.id == CheckIn.device_id)
        .where(CheckIn.event_id == event_id, CheckIn.conflict.is_(True))
        .order_by(CheckIn.scanned_at.desc(), CheckIn.id.desc())
    )
    return [Conflict(int(row[0]), str(row[1]), row[2], row[3], row[4], row[5] or "") for row in rows]


def two_gate_scans(event_id: str) -> list[TwoGates]:
    """Scans of one ticket at two different gates within a minute: a copied code at two doors."""
    earlier_at = sa.func.lag(ScanLogEntry.scanned_at).over(
        partition_by=ScanLogEntry.ticket_id, order_by=(ScanLogEntry.scanned_at, ScanLogEntry.id))
    earlier_gate = sa.func.lag(ScanLogEntry.gate_id).over(
        partition_by=ScanLogEntry.ticket_id, order_by=(ScanLogEntry.scanned_at, ScanLogEntry.id))
    scans = (
        sa.select(ScanLogEntry.ticket_id, ScanLogEntry.scanned_at, ScanLogEntry.gate_id,
                  earlier_at.label("earlier_at"), earlier_gate.label("earlier_gate"))
        .where(ScanLogEntry.event_id == event_id, ScanLogEntry.ticket_id.is_not(None),
               ScanLogEntry.direction == IN, ScanLogEntry.scanned_at.is_not(None))
        .subquery()
    )
    first_gate, second_gate = sa.orm.aliased(Gate), sa.orm.aliased(Gate)
    rows = db.session.execute(
        sa.select(scans.c.ticket_id, scans.c.earlier_at, first_gate.name, scans.c.scanned_at, second_gate.name)
        .join(first_gate, first_gate.id == scans.c.earlier_gate)
        .join(second_gate, second_gate.id == scans.c.gate_id)
        .where(scans.c.earlier_gate != scans.c.gate_id,
               scans.c.scanned_at - scans.c.earlier_at <= TWO_GATES_WINDOW)
        .order_by(scans.c.scanned_at.desc())
        .limit(MAX_LISTED)
    )
    return [TwoGates(str(row[0]), row[1], row[2], row[3], row[4]) for row in rows]


def bursts(event_id: str, device_id: str | None = None, received_since: datetime | None = None) -> list[Burst]:
    """Devices that sent :data:`BURST_SIZE` forged or unreadable codes within :data:`BURST_WINDOW`, with the
    first such moment: someone trying codes at a door. ``device_id`` narrows it to one device, and
    ``received_since`` to the scans the server received since then."""
    filters = [ScanLogEntry.event_id == event_id, ScanLogEntry.device_id.is_not(None),
               ScanLogEntry.result.in_(BAD_CODES), ScanLogEntry.scanned_at.is_not(None)]
    if device_id is not None:
        filters.append(ScanLogEntry.device_id == device_id)
    if received_since is not None:
        filters.append(ScanLogEntry.received_at >= received_since)
    scans = sa.select(
        ScanLogEntry.device_id, ScanLogEntry.scanned_at,
        sa.func.lag(ScanLogEntry.scanned_at, BURST_SIZE - 1).over(
            partition_by=ScanLogEntry.device_id, order_by=(ScanLogEntry.scanned_at, ScanLogEntry.id),
        ).label("window_start"),
        sa.func.count().over(partition_by=ScanLogEntry.device_id).label("bad_codes"),
    ).where(*filters).subquery()
    rows = db.session.execute(
        sa.select(scans.c.device_id, Device.name, sa.func.min(scans.c.window_start), sa.func.max(scans.c.bad_codes))
        .join(Device, Device.id == scans.c.device_id)
        .where(scans.c.scanned_at - scans.c.window_start <= BURST_WINDOW)
        .group_by(scans.c.device_id, Device.name)
        .order_by(sa.func.min(scans.c.window_start).desc())
        .limit(MAX_LISTED)
    )
    return [Burst(str(row[0]), row[1], row[2], int(row[3])) for row in rows]


def check_in_rows(event_id: str) -> Iterator[tuple[Any, ...]]:
    """Every check-in of the event, oldest first, with what the export shows about it, read in batches."""
    query = (
        sa.select(CheckIn.scanned_at, CheckIn.received_at, CheckIn.ticket_id, Ticket.attendee_name,
                  TicketType.name, Order.code, Gate.name, Device.name, CheckIn.direction, CheckIn.result,
                  CheckIn.online, CheckIn.conflict, CheckIn.conflict_reason, CheckIn.id)
        .join(Ticket, Ticket.id == CheckIn.ticket_id)
        .join(TicketType, TicketType.id == Ticket.ticket_type_id)
        .join(Order, Order.id == Ticket.order_id)
        .join(Gate, Gate.id == CheckIn.gate_id)
        .outerjoin(Device, Device.id == CheckIn.device_id)
        .where(CheckIn.event_id == event_id)
        .order_by(CheckIn.scanned_at, CheckIn.id)
        .limit(EXPORT_BATCH)
    )
    after: tuple[datetime, int] | None = None
    while True:
        page = query if after is None else query.where(sa.tuple_(CheckIn.scanned_at, CheckIn.id) > after)
        rows = [tuple(row) for row in db.session.execute(page)]
        yield from rows
        if len(rows) < EXPORT_BATCH:
            return
        after = (rows[-1][0], rows[-1][-1])
