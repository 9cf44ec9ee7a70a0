"""Events for the storefront and search tests, written straight to a tenant's tables.

``add_event(app, tenant, title=..., tickets=[("Standard", 2500)], ...)`` makes one event in any
state (the lifecycle rules are tested elsewhere); prices are in minor units, 0 is a free ticket.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from plugins.ticketing.models import Event, Quota, TicketType


@dataclass(frozen=True)
class Made:
    id: str
    slug: str
    ticket_type_ids: list[str]


def add_event(
    app: Flask,
    tenant: TenantInfo,
    *,
    title: str = "Spring Concert",
    tickets: list[tuple[str, int] | dict[str, Any]] | None = None,
    starts_in: timedelta = timedelta(days=10),
    hours: float = 3,
    status: str = "published",
    visibility: str = "public",
    quota: int | None = 100,
    latitude: float | None = None,
    longitude: float | None = None,
    published_at: datetime | None = None,
    starts_at: datetime | None = None,
    **fields: Any,
) -> Made:
    starts = starts_at or datetime.now(UTC).replace(microsecond=0) + starts_in
    words = re.findall(r"[a-z0-9]+", title.lower())
    slug = fields.pop("slug", None) or f"{'-'.join(words)[:60] or 'event'}-{uuid.uuid4().hex[:6]}"
    with app.app_context(), tenant_context(tenant):
        event = Event(
            slug=slug, title=title, starts_at=starts, ends_at=starts + timedelta(hours=hours), status=status,
            visibility=visibility, timezone=fields.pop("timezone", "Europe/Berlin"),
            venue_name=fields.pop("venue_name", "Town Hall"),
            venue_address=fields.pop("venue_address", "Main Street 1"),
            latitude=Decimal(str(latitude)) if latitude is not None else None,
            longitude=Decimal(str(longitude)) if longitude is not None else None,
            published_at=published_at or (datetime.now(UTC) if status != "draft" else None),
            **fields,
        )
        db.session.add(event)
        types = []
        for position, item in enumerate(tickets if tickets is not None else [("Standard", 2500)]):
            spec = item if isinstance(item, dict) else {
                "name": item[0], "price_minor": item[1], "kind": "paid" if item[1] else "free"
            }
            ticket_type = TicketType(position=position, **spec)
            event.ticket_types.append(ticket_type)
            types.append(ticket_type)
        if quota is not None and types:
            event.quotas.append(Quota(name="Venue", size=quota, ticket_types=list(types)))
        db.session.commit()
        return Made(event.id, event.slug, [t.id for t in types])


def add_paid_order(app: Flask, tenant: TenantInfo, made: Made, tickets: int, status: str = "paid") -> None:
    """An order holding ``tickets`` tickets of the event's first ticket type."""
    from plugins.ticketing.orders import Order, Ticket

    with app.app_context(), tenant_context(tenant):
        order = Order(
            id=str(uuid.uuid4()), code=uuid.uuid4().hex[:8].upper(), event_id=made.id, status=status,
            email="buyer@example.org", name="Buyer", total_minor=0, tax_minor=0, currency="EUR",
            payment_provider="free",
        )
        for position in range(tickets):
            order.tickets.append(Ticket(id=str(uuid.uuid4()), ticket_type_id=made.ticket_type_ids[0],
                                        price_minor=0, tax_minor=0, position=position))
        db.session.add(order)
        db.session.commit()
