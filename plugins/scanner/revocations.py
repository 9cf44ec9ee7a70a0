"""Revoked tickets: kept from ``ticketing.tickets_revoked`` so that scanners can carry the list offline."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from bilten_core.db import db
from bilten_core.outbox import Event as OutboxEvent
from plugins.scanner.models import Revocation
from plugins.scanner.reading import ADMITTING_STATUSES
from plugins.ticketing import orders
from plugins.ticketing.orders import Order, Ticket

TICKETS_REVOKED = "ticketing.tickets_revoked"
# Orders that never let anyone in and never will: their tickets need no place on the list.
NEVER_ISSUED = (orders.RESERVED, orders.EXPIRED)


def handle_outbox_event(event: OutboxEvent) -> None:
    """Record the tickets a ``ticketing.tickets_revoked`` event names; a repeat adds nothing."""
    if event.topic != TICKETS_REVOKED:
        return
    payload: dict[str, Any] = event.payload
    rows = [
        {"ticket_id": item["ticket_id"], "event_id": payload["event_id"], "reason": "revoked"}
        for item in payload.get("tickets", [])
    ]
    if rows:
        db.session.execute(insert(Revocation.__table__).values(rows).on_conflict_do_nothing())


def revoked_ticket_ids(event_id: str) -> list[str]:
    """Every ticket of ``event_id`` that must not be let in: revoked, or of an order not (or no longer) paid."""
    refused = (
        sa.select(Ticket.id)
        .join(Order, Order.id == Ticket.order_id)
        .where(
            Order.event_id == event_id,
            Order.status.not_in(NEVER_ISSUED),
            sa.or_(Ticket.valid.is_(False), Order.status.not_in(ADMITTING_STATUSES)),
        )
    )
    announced = sa.select(Revocation.ticket_id).where(Revocation.event_id == event_id)
    return sorted({str(ticket_id) for ticket_id in db.session.scalars(refused.union(announced))})
