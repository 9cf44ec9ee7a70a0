"""What a scanned code means at a gate, before the door state is consulted: forged, another event's,
revoked, the wrong gate, or a genuine ticket that may pass.

Results are stable words the scanner app translates; ``reason`` says more where one result has
several causes (a code that is not a ticket code at all is ``unknown`` with ``reason`` ``truncated``,
``malformed``, ``oversized`` or ``unknown_version``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from bilten_core.db import db
from plugins.scanner import ticket_codes
from plugins.scanner.keys import event_key_ring
from plugins.scanner.models import IN, OUT, Gate, Revocation
from plugins.scanner.ticket_codes import CodeError, EventKeyRing, Payload
from plugins.ticketing import orders
from plugins.ticketing.orders import Ticket

ADMITTED = "admitted"
ALREADY_USED = "already_used"
REVOKED = "revoked"
WRONG_EVENT = "wrong_event"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
UNKNOWN = "unknown"
FORGED = "forged"
NOT_ADMITTED_HERE = "not_admitted_here"
EXITED = "exited"
RESULTS = (
    ADMITTED, ALREADY_USED, REVOKED, WRONG_EVENT, NOT_YET_VALID, EXPIRED, UNKNOWN, FORGED, NOT_ADMITTED_HERE, EXITED,
)
# Orders whose tickets let people in.
ADMITTING_STATUSES = (orders.PAID, orders.PARTIALLY_REFUNDED)


@dataclass(frozen=True)
class Reading:
    """``result`` None: a genuine, valid ticket of the gate's event that this gate takes; the door decides."""

    result: str | None
    reason: str | None = None
    ticket: Ticket | None = None
    # What the code claims, verified or not, for the scan log.
    claimed_ticket_id: str | None = None


@dataclass
class Lookups:
    """The rings, tickets and revocations a batch of scans needs, each read once."""

    rings: dict[str, EventKeyRing | None] = field(default_factory=dict)
    revoked: set[str] | None = None

    def ring(self, event_id: str) -> EventKeyRing | None:
        if event_id not in self.rings:
            self.rings[event_id] = event_key_ring(event_id)
        return self.rings[event_id]

    def prefetch(self, ticket_ids: Iterable[str]) -> None:
        """Load these tickets with their orders and types, and their revocations, in a few queries."""
        wanted = sorted(set(ticket_ids))
        if not wanted:
            self.revoked = set()
            return
        db.session.scalars(
            sa.select(Ticket).where(Ticket.id.in_(wanted))
            .options(selectinload(Ticket.order), selectinload(Ticket.ticket_type))
        ).all()
        self.revoked = {
            str(ticket_id)
            for ticket_id in db.session.scalars(sa.select(Revocation.ticket_id).where(Revocation.ticket_id.in_(wanted)))
        }

    def is_revoked(self, ticket_id: str) -> bool:
        if self.revoked is not None:
            return ticket_id in self.revoked
        return db.session.get(Revocation, ticket_id) is not None


def claimed_ticket_id(code: str) -> str | None:
    """The ticket id a code names, unverified; None when it is not a ticket code."""
    try:
        return str(ticket_codes.decode(code).ticket_id)
    except CodeError:
        return None


def read(code: str, gate: Gate, direction: str, at: datetime, lookups: Lookups) -> Reading:
    """What ``code`` means at ``gate`` at the moment ``at`` (the server's time online, the scan's offline)."""
    try:
        claimed = ticket_codes.decode(code)
    except CodeError as error:
        return Reading(UNKNOWN, error.reason)
    claimed_id = str(claimed.ticket_id)
    event_id = str(gate.event_id)
    if str(claimed.event_id) != event_id:
        return _other_event(code, claimed, at, lookups)
    ring = lookups.ring(event_id)
    if ring is None:
        return Reading(FORGED, ticket_codes.UnknownKey.reason, claimed_ticket_id=claimed_id)
    try:
        payload = ticket_codes.verify(code, ring.public_keys(), at)
    except (ticket_codes.NotYetValid, ticket_codes.Expired) as error:
        return Reading(error.reason, None, _ticket(str(error.payload.ticket_id), event_id), claimed_id)
    except CodeError as error:
        return Reading(FORGED, error.reason, claimed_ticket_id=claimed_id)
    ticket = _ticket(str(payload.ticket_id), event_id)
    if ticket is None:
        return Reading(UNKNOWN, "no_such_ticket", claimed_ticket_id=claimed_id)
    if not ticket.valid or ticket.order.status not in ADMITTING_STATUSES or lookups.is_revoked(claimed_id):
        return Reading(REVOKED, ticket.order.status, ticket, claimed_id)
    problem = gate_problem(gate, ticket, direction, at)
    if problem is not None:
        return Reading(NOT_ADMITTED_HERE, problem, ticket, claimed_id)
    return Reading(None, None, ticket, claimed_id)


def gate_problem(gate: Gate, ticket: Ticket, direction: str, at: datetime) -> str | None:
    """Why ``gate`` does not let ``ticket`` through now, or None."""
    if direction == OUT:
        return None if gate.exits_allowed else "no_exits"
    assert direction == IN
    if gate.ticket_type_ids and str(ticket.ticket_type_id) not in {str(t) for t in gate.ticket_type_ids}:
        return "ticket_type"
    if (gate.opens_at is not None and at < gate.opens_at) or (gate.closes_at is not None and at > gate.closes_at):
        return "gate_closed"
    return None


def _other_event(code: str, claimed: Payload, at: datetime, lookups: Lookups) -> Reading:
    """A code naming another event: ``wrong_event`` if that event is ours and its ring signed it."""
    ring = lookups.ring(str(claimed.event_id))
    if ring is None:  # another organiser's event, or none: nothing here can vouch for it
        return Reading(UNKNOWN, "other_event")
    try:
        ticket_codes.verify(code, ring.public_keys(), at)
    except (ticket_codes.NotYetValid, ticket_codes.Expired):
        pass  # genuine all the same
    except CodeError as error:
        return Reading(FORGED, error.reason)
    return Reading(WRONG_EVENT, None, claimed_ticket_id=str(claimed.ticket_id))


def _ticket(ticket_id: str, event_id: str) -> Ticket | None:
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None or str(ticket.order.event_id) != event_id:
        return None
    return ticket
