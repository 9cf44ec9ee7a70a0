"""Letting tickets through the door: exactly-once admission online, and offline scans recorded as they
happened.

Every admission or exit of a ticket locks that ticket's ``scanner_ticket_states`` row (created on its
first scan) for the rest of its transaction. Two devices scanning the same ticket at the same instant
therefore queue on one row: the first admits, the second finds the ticket inside and answers
``already_used``, naming when and at which gate it went in.

Offline scans are facts, not requests: a device that let someone in without a network did let them
in. They are recorded even when they collide with another admission, and flagged for review then.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import insert

from bilten_core import audit
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.scanner.devices import Scanner
from plugins.scanner.models import IN, SINGLE_ENTRY, CheckIn, Gate, ScanLogEntry, TicketState
from plugins.scanner.reading import ADMITTED, ALREADY_USED, EXITED, Reading
from plugins.ticketing.orders import Ticket


@dataclass(frozen=True)
class Scan:
    """One scan as a device reports it; ``scanned_at`` is the device's clock."""

    nonce: str
    code: str
    gate_id: str
    direction: str
    scanned_at: datetime


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    """What the door shows about a ticket: whose it is and what it is."""
    return {
        "id": str(ticket.id),
        "attendee_name": ticket.attendee_name or ticket.order.name,
        "ticket_type": ticket.ticket_type.name,
        "note": _("Order %(code)s", code=ticket.order.code),
    }


def previous_view(state: TicketState) -> dict[str, Any] | None:
    """When and where the ticket last went in."""
    if state.last_in_at is None:
        return None
    gate = db.session.get(Gate, state.last_in_gate_id) if state.last_in_gate_id else None
    return {
        "at": state.last_in_at.isoformat(),
        "gate_id": str(state.last_in_gate_id) if state.last_in_gate_id else None,
        "gate": gate.name if gate is not None else None,
    }


def locked_states(tickets: list[Ticket]) -> dict[str, TicketState]:
    """The door state of each ticket, created if new and locked until commit, in ticket id order (no deadlocks)."""
    ids = sorted({str(ticket.id) for ticket in tickets})
    if not ids:
        return {}
    event_of = {str(ticket.id): str(ticket.order.event_id) for ticket in tickets}
    db.session.execute(
        insert(TicketState.__table__)
        .values([{"ticket_id": ticket_id, "event_id": event_of[ticket_id]} for ticket_id in ids])
        .on_conflict_do_nothing()
    )
    states = db.session.scalars(
        sa.select(TicketState).where(TicketState.ticket_id.in_(ids)).order_by(TicketState.ticket_id)
        .with_for_update().execution_options(populate_existing=True)
    ).all()
    return {str(state.ticket_id): state for state in states}


def admit(state: TicketState, gate: Gate, at: datetime) -> None:
    state.inside = True
    state.entries += 1
    if state.last_in_at is None or at >= state.last_in_at:
        state.last_in_at = at
        state.last_in_gate_id = gate.id


def leave(state: TicketState, at: datetime) -> None:
    # An exit older than the latest admission (a late offline upload) must not undo that admission.
    if state.last_in_at is None or at >= state.last_in_at:
        state.inside = False
    if state.last_out_at is None or at > state.last_out_at:
        state.last_out_at = at


def already_inside(state: TicketState, gate: Gate) -> bool:
    """Whether a single-entry ``gate`` must refuse the ticket: it went in and has not come out since."""
    return gate.entry_mode == SINGLE_ENTRY and state.inside


def new_check_in(scanner: Scanner, scan: Scan, gate: Gate, ticket: Ticket, result: str, *, online: bool,
                 received_at: datetime) -> CheckIn:
    check_in = CheckIn(
        nonce=scan.nonce, ticket_id=ticket.id, event_id=gate.event_id, gate_id=gate.id,
        device_id=scanner.device.id if scanner.device else None, account_id=scanner.account_id,
        direction=scan.direction, result=result, online=online, scanned_at=scan.scanned_at,
        received_at=received_at, conflict=False,
    )
    db.session.add(check_in)
    return check_in


def log_scan(scanner: Scanner, scan: Scan, event_id: str | None, result: str, *, online: bool,
             received_at: datetime, claimed_ticket_id: str | None, details: dict[str, Any]) -> ScanLogEntry:
    entry = ScanLogEntry(
        nonce=scan.nonce, device_id=scanner.device.id if scanner.device else None, account_id=scanner.account_id,
        event_id=event_id, gate_id=scan.gate_id, ticket_id=claimed_ticket_id, direction=scan.direction,
        result=result, online=online, scanned_at=scan.scanned_at, received_at=received_at,
        code_digest=hashlib.sha256(scan.code.encode("utf-8", "replace")).hexdigest(), details=details,
    )
    db.session.add(entry)
    return entry


def logged(nonce: str) -> ScanLogEntry | None:
    return db.session.scalar(sa.select(ScanLogEntry).where(ScanLogEntry.nonce == nonce))


def audit_passage(check_in: CheckIn, extra: dict[str, Any] | None = None) -> None:
    """Audit an admission or an exit: they change who is inside."""
    action = "scanner.admitted" if check_in.result == ADMITTED else "scanner.exited"
    audit.record(action, "ticket", check_in.ticket_id, {
        "check_in_id": check_in.id, "gate_id": check_in.gate_id, "online": check_in.online,
        "scanned_at": check_in.scanned_at, **(extra or {}),
    })


def decide_online(reading: Reading, scan: Scan, gate: Gate, at: datetime) -> tuple[str, TicketState]:
    """The door's answer for a ticket the reading let through, with its state locked and updated."""
    assert reading.ticket is not None and reading.result is None
    state = locked_states([reading.ticket])[str(reading.ticket.id)]
    if scan.direction != IN:
        leave(state, at)
        return EXITED, state
    if already_inside(state, gate):
        return ALREADY_USED, state
    admit(state, gate, at)
    return ADMITTED, state


def nonce_reused() -> ApiError:
    return ApiError(
        409, "nonce_reused", _("This scan's nonce was already used for another scan. Send each scan a new one."),
    )
