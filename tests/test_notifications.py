"""Staff notifications: stored in the tenant's schema, then delivered by the tenant's plugins."""

from __future__ import annotations

import job_probe as probe
import pytest
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.notifications import Notification, notify_staff
from bilten_core.tenancy.context import TenantRequired, tenant_context
from tenants.service import set_plugin

pytestmark = pytest.mark.usefixtures("clean_jobs")


def stored(app, tenant):
    with tenant_context(probe.fresh_info(app, tenant)):
        return [(n.kind, n.title, n.body, n.link) for n in db.session.scalars(sa.select(Notification))]


def test_a_notification_is_stored_for_its_tenant_and_delivered_after_commit(jobs_app, make_tenant):
    tenant, other = make_tenant("notify-a"), make_tenant("notify-b")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        notification = notify_staff("orders.refund_failed", "A refund failed", "Order 42", link="/orders/42")
        probe.work(jobs_app)
        assert probe.seen_of("notification") == []  # nothing is delivered before the commit
        db.session.commit()
        assert notification.id is not None

    probe.work(jobs_app)

    assert stored(jobs_app, tenant) == [("orders.refund_failed", "A refund failed", "Order 42", "/orders/42")]
    assert stored(jobs_app, other) == []
    assert probe.seen_of("notification") == [
        ("notification", tenant.slug, "orders.refund_failed", "A refund failed", "/orders/42")
    ]


def test_plugins_a_tenant_disabled_do_not_deliver_its_notifications(jobs_app, make_tenant):
    tenant = make_tenant("notify-off")
    set_plugin(tenant.slug, probe.NAME, False)
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        notify_staff("hello.greeting", "Someone said hello")
        db.session.commit()

    probe.work(jobs_app)

    assert stored(jobs_app, tenant) == [("hello.greeting", "Someone said hello", "", None)]
    assert probe.seen_of("notification") == []


def test_a_rolled_back_notification_is_neither_stored_nor_delivered(jobs_app, make_tenant):
    tenant = make_tenant("notify-rollback")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        notify_staff("orders.paid", "Never happened")
        db.session.rollback()

    probe.work(jobs_app)

    assert stored(jobs_app, tenant) == []
    assert probe.seen_of("notification") == []


def test_notifying_staff_needs_a_tenant(jobs_app):
    with pytest.raises(TenantRequired):
        notify_staff("orders.paid", "Whose staff?")
