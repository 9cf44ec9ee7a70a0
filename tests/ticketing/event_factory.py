"""Events for tests: a published event with ticket types sharing a quota, and staff who may manage it.

``create_event(app, tenant)`` goes through the same services as the organiser's pages and API, so
what it makes is what an organiser could make. ``staff_headers`` signs requests with a real access
token of a member holding ``role`` in the tenant.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from bilten_core.auth.access_tokens import mint_access_token
from bilten_core.auth.models import Account, Membership
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import host_of
from plugins.ticketing import events


@dataclass(frozen=True)
class MadeEvent:
    id: str
    slug: str
    ticket_type_ids: list[str]
    quota_id: str | None
    tenant: TenantInfo
    ticket_types: dict[str, str] = field(default_factory=dict)  # name -> id


def ticket_spec(item: tuple[str, int] | dict[str, Any]) -> dict[str, Any]:
    """A ticket type from ``(name, price_minor)`` (0 makes it free) or a full dict as the API takes it."""
    if isinstance(item, dict):
        return item
    name, price = item
    return {"name": name, "kind": "paid" if price else "free", "price_minor": price}


def create_event(
    app: Flask,
    tenant: TenantInfo,
    *,
    title: str = "Spring Concert",
    ticket_types: tuple[tuple[str, int] | dict[str, Any], ...] = (("Standard", 2500),),
    quota: int | None = 100,
    starts_in: timedelta = timedelta(days=30),
    hours: int = 3,
    status: str = "published",
    timezone: str = "Europe/Berlin",
    **fields: Any,
) -> MadeEvent:
    """An event of ``tenant`` whose ticket types all draw on one quota of ``quota`` places (none when None),
    moved to ``status`` through the lifecycle (draft → published → ...)."""
    starts = datetime.now(UTC).replace(microsecond=0) + starts_in
    with app.app_context(), tenant_context(tenant):
        event = events.create_event({
            "title": title, "timezone": timezone, "starts_at": starts, "ends_at": starts + timedelta(hours=hours),
            "venue_name": "Town Hall", "venue_address": "Main Street 1", **fields,
        })
        made = [events.save_ticket_type(event, ticket_spec(item)) for item in ticket_types]
        quota_id = None
        if quota is not None:
            quota_id = events.save_quota(
                event, {"name": "Venue", "size": quota, "ticket_type_ids": [item.id for item in made]}
            ).id
        path = {"draft": [], "published": ["published"], "sales_closed": ["published", "sales_closed"],
                "ended": ["published", "ended"], "cancelled": ["published", "cancelled"],
                "postponed": ["published", "postponed"]}[status]
        for step in path:
            events.transition(event, step)
        db.session.commit()
        return MadeEvent(event.id, event.slug, [item.id for item in made], quota_id, tenant,
                         {item.name: item.id for item in made})


def make_staff(app: Flask, tenant: TenantInfo, role: str = "event_manager") -> str:
    """A new account with ``role`` in ``tenant``; returns its id."""
    with app.app_context():
        account = Account(email=f"{role}-{uuid.uuid4().hex[:8]}@example.org", display_name=role.title())
        db.session.add(account)
        db.session.flush()
        db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
        db.session.commit()
        return account.id


def bearer_headers(app: Flask, tenant: TenantInfo, account_id: str) -> dict[str, str]:
    """Headers of an API request on ``tenant``'s host with an access token of ``account_id``."""
    with app.app_context():
        token = mint_access_token(account_id, tenant, auth_methods=("pwd",))
    return {**host_of(tenant), "Authorization": f"Bearer {token}"}


def staff_headers(app: Flask, tenant: TenantInfo, role: str = "event_manager") -> dict[str, str]:
    """Headers of a new member with ``role`` calling the API of ``tenant``."""
    return bearer_headers(app, tenant, make_staff(app, tenant, role))
