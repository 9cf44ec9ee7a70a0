"""Each event's key ring, stored sealed, and the signed code of a ticket.

:func:`ticket_code` is public: ticketing (through a hook) shows its result in QR codes. A ring is
created on an event's first code, in a short transaction of its own: a code handed out must keep
verifying even if the caller's transaction rolls back.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects.postgresql import insert

from bilten_core.auth.sealing import Sealer
from bilten_core.db import db, tenant_engine
from bilten_core.tenancy.context import current_tenant
from plugins.scanner import ticket_codes
from plugins.scanner.models import KeyRing
from plugins.scanner.ticket_codes import EventKeyRing
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Ticket

# A code keeps admitting for this long after its event ends: late leavers, re-entry after an encore.
VALIDITY_MARGIN = timedelta(hours=6)


def _sealer() -> Sealer:
    return Sealer(str(current_app.config["SECRET_KEY"]), ticket_codes.SEALING_PURPOSE)


def event_key_ring(event_id: str) -> EventKeyRing | None:
    """The ring of ``event_id`` in the current tenant, or None while it has issued no code."""
    stored = db.session.get(KeyRing, event_id)
    if stored is None:
        return None
    return EventKeyRing.from_dict(uuid.UUID(event_id), stored.ring, _sealer())


def _ring_for_issuing(event_id: str) -> EventKeyRing:
    ring = event_key_ring(event_id)
    if ring is not None:
        return ring
    fresh = EventKeyRing.generate(uuid.UUID(event_id)).to_dict(_sealer())
    table = KeyRing.__table__
    with tenant_engine(current_tenant().schema).begin() as connection:
        connection.execute(insert(table).values(event_id=event_id, ring=fresh).on_conflict_do_nothing())
        # Whoever inserted first, this is the ring from now on.
        stored = connection.execute(sa.select(table.c.ring).where(table.c.event_id == event_id)).scalar_one()
    return EventKeyRing.from_dict(uuid.UUID(event_id), stored, _sealer())


def ticket_code(ticket: Ticket) -> str:
    """The signed code of ``ticket``, valid from its sale until its event's end plus :data:`VALIDITY_MARGIN`.

    The same ticket gets the same code as long as its event's end and active key stay the same.
    """
    event_id = str(ticket.order.event_id)
    ends_at = db.session.scalars(sa.select(Event.ends_at).where(Event.id == event_id)).one()
    ring = _ring_for_issuing(event_id)
    return ring.issue(
        ticket_id=uuid.UUID(str(ticket.id)),
        ticket_type_id=uuid.UUID(str(ticket.ticket_type_id)),
        not_before=ticket.created_at,
        not_after=ends_at + VALIDITY_MARGIN,
    )
