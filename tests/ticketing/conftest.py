"""Fixtures for the ticketing tests: an app, tenants with a published event, staff tokens, a live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import job_probe
import pytest
from flask import Flask

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.testing import host_of, served_by_gunicorn
from tests.auth.auth_mail import Inbox, smtp_inbox


@pytest.fixture(scope="session")
def tk_app(app: Flask) -> Flask:
    """The test app (ticketing is enabled in config/test.toml)."""
    return app


@pytest.fixture
def tenant(make_tenant: Callable[..., TenantInfo]) -> TenantInfo:
    return make_tenant("tk")


class Catalog:
    """Creates events, ticket types and quotas of one tenant with the ORM, as an organiser's tools would."""

    def __init__(self, app: Flask, tenant: TenantInfo) -> None:
        self.app = app
        self.tenant = tenant

    def event(self, *, status: str = "published", capacity: int | None = None, **fields: Any) -> str:
        from plugins.ticketing.models import Event

        starts = datetime.now(UTC) + timedelta(days=30)
        with self.app.app_context(), tenant_context(self.tenant):
            event = Event(
                slug=f"e-{uuid.uuid4().hex[:10]}", title=fields.pop("title", "Concert"), starts_at=starts,
                ends_at=starts + timedelta(hours=3), status=status, capacity=capacity, **fields,
            )
            db.session.add(event)
            db.session.commit()
            return str(event.id)

    def ticket_type(self, event_id: str, *, quotas: tuple[str, ...] = (), tiers: tuple[dict[str, Any], ...] = (),
                    **fields: Any) -> str:
        from plugins.ticketing.models import PriceTier, Quota, TicketType

        with self.app.app_context(), tenant_context(self.tenant):
            ticket_type = TicketType(event_id=event_id, name=fields.pop("name", "Standard"), **fields)
            for position, tier in enumerate(tiers):
                ticket_type.price_tiers.append(PriceTier(position=position, **tier))
            db.session.add(ticket_type)
            db.session.flush()
            for quota_id in quotas:
                quota = db.session.get(Quota, quota_id)
                assert quota is not None
                quota.ticket_types.append(ticket_type)
            db.session.commit()
            return str(ticket_type.id)

    def quota(self, event_id: str, size: int, held: int = 0, name: str = "Hall") -> str:
        from plugins.ticketing.models import Quota

        with self.app.app_context(), tenant_context(self.tenant):
            quota = Quota(event_id=event_id, name=name, size=size, held=held)
            db.session.add(quota)
            db.session.commit()
            return str(quota.id)

    def simple(self, size: int = 10, **type_fields: Any) -> tuple[str, str, str]:
        """A published event with one quota of ``size`` and one ticket type on it: (event, quota, type)."""
        event_id = self.event()
        quota_id = self.quota(event_id, size)
        type_fields.setdefault("price_minor", 2500)
        return event_id, quota_id, self.ticket_type(event_id, quotas=(quota_id,), **type_fields)

    def settings(self, **changes: Any) -> None:
        from bilten_core.tenant_settings import update_settings

        with self.app.app_context(), tenant_context(self.tenant):
            update_settings("checkout", changes)
            db.session.commit()

    def run(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` inside the tenant (for checks straight in the database)."""
        with self.app.app_context(), tenant_context(self.tenant):
            return fn()


@pytest.fixture
def catalog(tk_app: Flask, tenant: TenantInfo) -> Catalog:
    return Catalog(tk_app, tenant)


@pytest.fixture
def catalog_for(tk_app: Flask) -> Callable[[TenantInfo], Catalog]:
    """A :class:`Catalog` for another tenant."""
    return lambda tenant: Catalog(tk_app, tenant)


@pytest.fixture
def staff_headers(tk_app: Flask) -> Callable[[TenantInfo, str], dict[str, str]]:
    """Headers of a new member of ``tenant`` with ``role``, authenticated by a real access token."""
    from bilten_core.auth.access_tokens import mint_access_token
    from bilten_core.auth.models import Account, Membership

    def make(tenant: TenantInfo, role: str = "admin") -> dict[str, str]:
        with tk_app.app_context():
            account = Account(email=f"staff-{uuid.uuid4().hex[:8]}@example.org", display_name="Staff")
            db.session.add(account)
            db.session.flush()
            db.session.add(Membership(account_id=account.id, tenant_id=tenant.id, role=role))
            db.session.commit()
            token = mint_access_token(account.id, tenant, roles=[role])
        return {**host_of(tenant), "Authorization": f"Bearer {token}"}

    return make


@pytest.fixture
def inbox(tk_app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    """The mail the app sends, as a real SMTP server receives it; the job queues start empty."""
    job_probe.reset(tk_app)
    with smtp_inbox(tk_app, monkeypatch) as box:
        yield box


@pytest.fixture(scope="session")
def live_server(tk_app: Flask, database_url: str, redis_url: str) -> Iterator[str]:
    """The app served by gunicorn (several worker processes) on loopback, as in production; yields its URL."""
    with served_by_gunicorn({"DATABASE_URL": database_url, "REDIS_URL": redis_url}) as base_url:
        yield base_url
