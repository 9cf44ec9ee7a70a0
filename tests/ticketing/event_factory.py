"""Events for tests: a published event with ticket types sharing a quota, and staff who may manage it.

``create_event(app, tenant)`` goes through the same services as the organiser's pages and API, so
what it makes is what an organiser could make. ``staff_headers`` signs requests with a real access
token of a member holding ``role`` in the tenant; ``signed_in_member`` is such a member in a browser,
signed in through the tenant's sign-in page. ``buy`` places an order as a buyer does, through the API.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bilten_core.auth.access_tokens import mint_access_token
from bilten_core.auth.models import Account, Membership
from bilten_core.auth.passwords import hash_password
from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import host_of
from plugins.ticketing import events
from plugins.ticketing.orders import Ticket
from plugins.ticketing.ticket_display import display_code

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BUYER = "ann@example.org"


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


def add_account(app: Flask, email: str, display_name: str = "Ann Buyer", verified: bool = True) -> str:
    """An account that signs in with :data:`PASSWORD` (its address confirmed unless ``verified`` is false);
    returns its id."""
    with app.app_context():
        account = Account(email=email, display_name=display_name, password_hash=hash_password(PASSWORD),
                          email_verified_at=datetime.now(UTC) if verified else None)
        db.session.add(account)
        db.session.commit()
        return account.id


def add_member(app: Flask, tenant: TenantInfo, role: str = "event_manager",
               display_name: str = "Olga Organiser") -> str:
    """A new account with ``role`` in ``tenant`` that signs in with :data:`PASSWORD`; returns its email."""
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.org"
    account_id = add_account(app, email, display_name)
    with app.app_context():
        db.session.add(Membership(account_id=account_id, tenant_id=tenant.id, role=role))
        db.session.commit()
    return email


class SiteClient:
    """A browser on ``tenant``'s host, with its cookies. ``post`` sends ``token`` as the CSRF token, else the
    session's once signed in, else none; a ``csrf_token`` in the data wins over both."""

    def __init__(self, app: Flask, tenant: TenantInfo) -> None:
        self.client: FlaskClient = app.test_client()
        self.base = f"http://{tenant.primary_domain}"
        self.token = ""

    def get(self, path: str) -> TestResponse:
        return self.client.get(path, base_url=self.base)

    def post(self, path: str, data: dict[str, Any], token: str | None = None) -> TestResponse:
        token = token or self.token
        return self.client.post(path, base_url=self.base, data={"csrf_token": token, **data} if token else data)

    def token_on(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        return CSRF.findall(page.text)[0]

    def sign_in(self, email: str) -> None:
        signed_in = self.post("/account/sign-in", {"email": email, "password": PASSWORD},
                              token=self.token_on("/account/sign-in"))
        assert signed_in.status_code == 302, signed_in.text
        self.token = self.token_on("/account/")


def signed_in_member(app: Flask, tenant: TenantInfo, role: str = "event_manager") -> SiteClient:
    """A new member of ``tenant`` with ``role``, signed in through the sign-in page of the tenant's host."""
    member = SiteClient(app, tenant)
    member.sign_in(add_member(app, tenant, role))
    return member


def buy(client: FlaskClient, tenant: TenantInfo, *items: tuple[str, int], email: str = BUYER,
        name: str = "Ann Buyer", attendees: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    """An order of ``(ticket type id, quantity)`` items, reserved and placed through the API as a buyer does,
    its tickets' attendees named in turn by ``attendees``; ``extra`` goes into the order's body as it is."""
    body = {"items": [{"ticket_type_id": type_id, "quantity": quantity} for type_id, quantity in items]}
    reserved = client.post("/api/v1/reservations", json=body, headers=host_of(tenant))
    assert reserved.status_code == 201, reserved.text
    ordered = client.post(
        "/api/v1/orders", headers=host_of(tenant),
        json={"reservation_id": reserved.get_json()["id"], "email": email, "name": name,
              "attendees": [{"name": attendee} for attendee in attendees], **extra},
    )
    assert ordered.status_code == 201, ordered.text
    return ordered.get_json()


def shown_codes(app: Flask, tenant: TenantInfo, order: dict[str, Any]) -> list[str]:
    """The codes a buyer is shown for ``order``'s tickets (the scanner's signed codes while it is on)."""
    with app.app_context(), tenant_context(tenant):
        return [display_code(db.session.get(Ticket, ticket["id"])) for ticket in order["tickets"]]
