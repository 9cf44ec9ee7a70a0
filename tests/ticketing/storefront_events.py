"""Events for the storefront and search tests, written straight to a tenant's tables.

``add_event(app, tenant, title=..., tickets=[("Standard", 2500)], ...)`` makes one event in any
state (the lifecycle rules are tested elsewhere); prices are in minor units, 0 is a free ticket.
``Shopper`` is a buyer's browser on the storefront, choosing tickets on an event's page.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Flask
from werkzeug.test import TestResponse

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from plugins.ticketing.models import Event, Quota, TicketType
from tests.ticketing.event_factory import SiteClient

KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


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


def quantity_fields(quantities: dict[str, int | str]) -> dict[str, str]:
    """The event page's form fields for ``quantities`` (ticket type id -> how many, or what a buyer typed)."""
    return {f"qty-{type_id}": str(count) for type_id, count in quantities.items()}


class Shopper(SiteClient):
    """A buyer's browser on the tenant's storefront."""

    def choose(self, slug: str, fields: dict[str, str], page_query: str = "") -> TestResponse:
        """Send the ticket form of the event's page (opened with ``page_query``) with ``fields``: quantities
        (see :func:`quantity_fields`), amounts, an unlock code."""
        return self.post(f"/events/{slug}/tickets", fields, token=self.token_on(f"/events/{slug}{page_query}"))

    def checkout_path(self, slug: str, quantities: dict[str, int | str]) -> str:
        """Choose ``quantities`` of the event's tickets; the path of the checkout page they lead to."""
        chosen = self.choose(slug, quantity_fields(quantities))
        assert chosen.status_code == 303, chosen.text
        return chosen.headers["Location"]
