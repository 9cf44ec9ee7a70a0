from datetime import date
from decimal import Decimal
from types import ModuleType

import pytest
from flask import Blueprint

from bilten_core import hookimpl
from bilten_core.audit import Actor, acting_as, history, record
from bilten_core.db import db
from bilten_core.tenancy.context import TenantRequired, tenant_context
from bilten_core.testing import host_of


def test_an_entry_is_recorded_with_its_change(app_context, make_tenant):
    tenant = make_tenant("audit")
    with tenant_context(tenant):
        record("event.renamed", "event", 42, changes={"title": ["Jazz", "Jazz Night"]})
        db.session.commit()
    with tenant_context(tenant):
        [entry] = history("event", 42)
    assert entry.action == "event.renamed"
    assert entry.object_id == "42"
    assert entry.changes == {"title": ["Jazz", "Jazz Night"]}
    assert (entry.actor_type, entry.actor_id) == ("system", None)
    assert entry.occurred_at is not None
    assert entry.ip is None and entry.request_id is None


def test_a_rolled_back_change_leaves_no_entry(app_context, make_tenant):
    tenant = make_tenant("audit")
    with tenant_context(tenant):
        record("event.deleted", "event", 7)
        db.session.rollback()
        assert history("event", 7) == []


def test_history_is_newest_first_and_scoped_to_the_object(app_context, make_tenant):
    tenant = make_tenant("audit")
    with tenant_context(tenant):
        for action in ("event.created", "event.published", "event.cancelled"):
            record(action, "event", 1)
            db.session.commit()
        record("event.created", "event", 2)
        db.session.commit()
        assert [e.action for e in history("event", 1)] == ["event.cancelled", "event.published", "event.created"]
        assert len(history("event")) == 4
        assert [e.action for e in history("event", 1, limit=1)] == ["event.cancelled"]


def test_tenants_never_see_each_others_entries(app_context, make_tenant):
    first, second = make_tenant("first"), make_tenant("second")
    with tenant_context(first):
        record("event.created", "event", 1)
        db.session.commit()
    with tenant_context(second):
        assert history("event", 1) == []
        assert history("event") == []


def test_recording_needs_a_tenant(app_context):
    with pytest.raises(TenantRequired):
        record("event.created", "event", 1)


def test_values_json_cannot_hold_are_kept_as_text(app_context, make_tenant):
    tenant = make_tenant("audit")
    with tenant_context(tenant):
        record("price.changed", "ticket_type", 3, changes={"price": [Decimal("9.50"), Decimal("12.00")],
                                                          "on_sale": date(2030, 5, 1)})
        db.session.commit()
        [entry] = history("ticket_type", 3)
    assert entry.changes == {"price": ["9.50", "12.00"], "on_sale": "2030-05-01"}


def test_an_explicit_actor_wins(app_context, make_tenant):
    tenant = make_tenant("audit")
    with tenant_context(tenant), acting_as(Actor("user", "u-17")):
        record("event.created", "event", 5)
        record("event.published", "event", 5, actor=Actor("job", "job-9"))
        db.session.commit()
        published, created = history("event", 5)
    assert (created.actor_type, created.actor_id) == ("user", "u-17")
    assert (published.actor_type, published.actor_id) == ("job", "job-9")


def test_a_request_records_where_the_change_came_from(make_app, make_tenant):
    probe = Blueprint("audit_probe", __name__)

    @probe.post("/audit-probe")
    def change() -> str:
        record("event.created", "event", 11)
        db.session.commit()
        return "ok"

    plugin = ModuleType("audit_probe")
    plugin.register_blueprints = hookimpl(lambda app: [probe])  # type: ignore[attr-defined]
    app = make_app(extra_plugins=(("audit_probe", plugin),))
    tenant = make_tenant("audit")
    response = app.test_client().post(
        "/audit-probe",
        headers={**host_of(tenant), "User-Agent": "TicketScanner/2.1", "X-Request-ID": "req-12345678"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    assert response.status_code == 200
    with app.app_context(), tenant_context(tenant):
        [entry] = history("event", 11)
    assert entry.ip == "203.0.113.9"
    assert entry.user_agent == "TicketScanner/2.1"
    assert entry.request_id == "req-12345678"
    assert entry.actor_type == "anonymous"


def test_a_signed_in_request_records_its_account_as_the_actor(app_context, make_tenant):
    from bilten_core.auth.identity import Identity, set_identity

    tenant = make_tenant("audit-who")
    with app_context.test_request_context("/"), tenant_context(tenant):
        set_identity(Identity(account_id="9b7e6c1a-0000-4000-8000-000000000001", channel="session",
                              tenant_id=tenant.id))
        record("event.updated", "event", 12)
        db.session.commit()
        [entry] = history("event", 12)
    assert (entry.actor_type, entry.actor_id) == ("user", "9b7e6c1a-0000-4000-8000-000000000001")
