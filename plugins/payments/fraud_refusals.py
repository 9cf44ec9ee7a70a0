"""The checkouts refused lately, read from the tenant's audit trail (``ticketing.checkout_refused``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from bilten_core.audit import AuditEntry
from bilten_core.db import db

REFUSED = "ticketing.checkout_refused"
# Bounds the walk down the audit trail's time index when refusals are rare.
SHOWN_DAYS = 30


@dataclass(frozen=True)
class Refusal:
    at: datetime
    email: str
    remote_addr: str | None
    reasons: list[str]


def recent_refusals(limit: int = 50) -> list[Refusal]:
    """The current tenant's latest refused checkouts of the last :data:`SHOWN_DAYS` days, newest first,
    whichever plugin refused them."""
    since = datetime.now(UTC) - timedelta(days=SHOWN_DAYS)
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.occurred_at >= since, AuditEntry.action == REFUSED)
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit)
    )
    return [
        Refusal(
            at=entry.occurred_at, email=str(entry.changes.get("email") or ""),
            remote_addr=entry.changes.get("remote_addr") or entry.ip,
            reasons=[str(reason) for reason in entry.changes.get("reasons") or []],
        )
        for entry in entries
    ]
