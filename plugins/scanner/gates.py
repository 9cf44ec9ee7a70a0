"""Gates: an event's check-in lists, each saying which ticket types it admits, when, how often, and
whether it takes exit scans."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError

from bilten_core import audit
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.scanner.models import Gate
from plugins.ticketing.models import Event, TicketType

FIELDS = ("name", "ticket_type_ids", "opens_at", "closes_at", "entry_mode", "exits_allowed")


def gates_of(event_id: str) -> list[Gate]:
    return list(db.session.scalars(sa.select(Gate).where(Gate.event_id == event_id).order_by(Gate.name, Gate.id)))


def gate_or_404(event_id: str, gate_id: Any) -> Gate:
    gate = db.session.get(Gate, str(gate_id))
    if gate is None or str(gate.event_id) != str(event_id):
        raise ApiError(404, "gate_not_found", _("There is no such gate."), {"gate_id": str(gate_id)})
    return gate


def save_gate(event: Event, changes: Mapping[str, Any], gate: Gate | None = None) -> Gate:
    """Create a gate of ``event``, or change ``gate``; validated, audited and committed."""
    created = gate is None
    if gate is None:
        gate = Gate(id=str(uuid.uuid4()), event_id=event.id, ticket_type_ids=[], exits_allowed=False)
    values = {name: changes[name] for name in FIELDS if name in changes}
    if "ticket_type_ids" in values:
        values["ticket_type_ids"] = _ticket_types_of(event, values["ticket_type_ids"])
    opens_at = values.get("opens_at", gate.opens_at)
    closes_at = values.get("closes_at", gate.closes_at)
    if opens_at is not None and closes_at is not None and opens_at >= closes_at:
        raise ApiError(422, "invalid_window", _("A gate must open before it closes."),
                       {"opens_at": opens_at.isoformat(), "closes_at": closes_at.isoformat()})
    for name, value in values.items():
        setattr(gate, name, value)
    if created:
        db.session.add(gate)
    audit.record("scanner.gate_created" if created else "scanner.gate_changed", "scanner_gate", gate.id,
                 dict(values))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ApiError(409, "gate_name_taken", _("This event already has a gate of that name."),
                       {"name": values.get("name")}) from None
    return gate


def _ticket_types_of(event: Event, ticket_type_ids: list[Any]) -> list[str]:
    wanted = sorted({str(type_id) for type_id in ticket_type_ids})
    found = set(db.session.scalars(
        sa.select(TicketType.id).where(TicketType.event_id == event.id, TicketType.id.in_(wanted))
    )) if wanted else set()
    missing = [type_id for type_id in wanted if type_id not in found]
    if missing:
        raise ApiError(422, "unknown_ticket_type", _("Every ticket type must be one of this event's."),
                       {"ticket_type_ids": missing})
    return wanted
