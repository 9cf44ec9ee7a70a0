"""What a scanner takes along for an event to check tickets in without a network."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from bilten_core.db import db
from plugins.scanner import gates as gate_service
from plugins.scanner import revocations
from plugins.scanner.admission import ticket_view
from plugins.scanner.clock import db_now
from plugins.scanner.keys import event_key_ring
from plugins.scanner.models import Gate
from plugins.scanner.reading import ADMITTING_STATUSES
from plugins.scanner.settings import scanner_settings
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, Ticket


def gate_view(gate: Gate) -> dict[str, Any]:
    return {
        "id": str(gate.id), "event_id": str(gate.event_id), "name": gate.name,
        "ticket_type_ids": [str(type_id) for type_id in gate.ticket_type_ids],
        "opens_at": gate.opens_at, "closes_at": gate.closes_at, "entry_mode": gate.entry_mode,
        "exits_allowed": gate.exits_allowed,
    }


def bundle(event: Event, gate_ids: list[str]) -> dict[str, Any]:
    """The event, its gates (those in ``gate_ids`` when not empty), its public keys and revoked tickets,
    and its attendees when the organisation allows offline attendee lists."""
    generated_at = db_now()
    gates = gate_service.gates_of(event.id)
    if gate_ids:
        gates = [gate for gate in gates if str(gate.id) in gate_ids]
    ring = event_key_ring(event.id)
    return {
        "event": {
            "id": str(event.id), "title": event.title, "starts_at": event.starts_at, "ends_at": event.ends_at,
            "timezone": event.timezone, "status": event.status,
            "ticket_types": [{"id": str(t.id), "name": t.name} for t in event.ticket_types],
        },
        "gates": [gate_view(gate) for gate in gates],
        "public_keys": ring.export_public_keys() if ring is not None else {},
        "revoked": revocations.revoked_ticket_ids(event.id),
        "attendees": _attendees(event.id) if scanner_settings().offline_attendee_list else None,
        "generated_at": generated_at,
    }


def _attendees(event_id: str) -> list[dict[str, Any]]:
    tickets = db.session.scalars(
        sa.select(Ticket).join(Order, Order.id == Ticket.order_id)
        .where(Order.event_id == event_id, Order.status.in_(ADMITTING_STATUSES), Ticket.valid.is_(True))
        .options(selectinload(Ticket.order), selectinload(Ticket.ticket_type))
        .order_by(Ticket.id)
    )
    return [{"ticket_id": view.pop("id"), **view} for view in map(ticket_view, tickets)]
