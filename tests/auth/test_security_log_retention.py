"""Retention: the daily job deletes log entries older than the retention period, and nothing else
can delete or change an entry: not a stray statement, not a purge of recent entries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from bilten_core import audit
from bilten_core.audit import AuditEntry
from bilten_core.auth import security_log
from bilten_core.auth.security_log import PlatformSecurityEntry
from bilten_core.config import AuditSettings
from bilten_core.db import db
from bilten_core.jobs import execute, registered_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context

DAYS = 400


@pytest.fixture
def tenant(make_info):
    return make_info("retention")


def days_ago(days):
    return datetime.now(UTC) - timedelta(days=days)


def add_platform_entry(age_days):
    entry = audit.new_entry(PlatformSecurityEntry, security_log.SIGN_IN_FAILED, "account", None,
                            {"marker": uuid.uuid4().hex}, audit.Actor("system"))
    entry.occurred_at = days_ago(age_days)
    db.session.add(entry)
    db.session.commit()
    return entry.id


def add_tenant_entry(age_days):
    entry = audit.record(security_log.SIGN_IN, "account", None, {"marker": uuid.uuid4().hex}, audit.Actor("system"))
    entry.occurred_at = days_ago(age_days)
    db.session.commit()
    return entry.id


def allow_purge(days):
    db.session.execute(sa.text("SELECT set_config('bilten.retention_purge', 'on', true)"))
    db.session.execute(sa.text("SELECT set_config('bilten.retention_days', :d, true)"), {"d": str(days)})


def refused(statement):
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(statement)
    db.session.rollback()


@pytest.mark.parametrize("model", [PlatformSecurityEntry, AuditEntry], ids=["platform", "tenant"])
def test_updates_are_refused_even_inside_a_purge_and_for_old_entries(web, tenant, model):
    with web.app_context(), tenant_context(tenant):
        add = add_platform_entry if model is PlatformSecurityEntry else add_tenant_entry
        old = add(DAYS + 100)
        refused(sa.update(model).where(model.id == old).values(action="auth.sign_out"))
        allow_purge(DAYS)
        refused(sa.update(model).where(model.id == old).values(action="auth.sign_out"))
        assert db.session.get(model, old).action != "auth.sign_out"


@pytest.mark.parametrize("model", [PlatformSecurityEntry, AuditEntry], ids=["platform", "tenant"])
def test_deletes_are_refused_outside_a_purge_and_for_entries_younger_than_retention(web, tenant, model):
    with web.app_context(), tenant_context(tenant):
        add = add_platform_entry if model is PlatformSecurityEntry else add_tenant_entry
        old, recent, month = add(DAYS + 100), add(0), add(20)
        refused(sa.delete(model).where(model.id == old))  # no purge switched on: a stray statement
        allow_purge(DAYS)
        refused(sa.delete(model).where(model.id == recent))
        # A purge claiming a retention of 0 days still cannot touch the last 30 days.
        allow_purge(0)
        refused(sa.delete(model).where(model.id == month))
        allow_purge("not a number")
        with pytest.raises(DBAPIError):
            db.session.execute(sa.delete(model).where(model.id == old))
        db.session.rollback()
        table = model.__table__.name if model is AuditEntry else "shared.platform_security_log"
        qualified = f'"{tenant.schema}".{table}' if model is AuditEntry else table
        allow_purge(DAYS)
        refused(sa.text(f"TRUNCATE {qualified}"))
        assert {db.session.get(model, i) is not None for i in (old, recent, month)} == {True}


def test_the_purge_job_deletes_only_what_is_older_than_retention_everywhere(web, tenant, make_info):
    other = make_info("retention-other")
    with web.app_context():
        platform_old, platform_kept = add_platform_entry(DAYS + 1), add_platform_entry(DAYS - 1)
        kept = {}
        gone = {}
        for info in (tenant, other):
            with tenant_context(info):
                gone[info.slug], kept[info.slug] = add_tenant_entry(DAYS + 1), add_tenant_entry(DAYS - 1)

        assert kernel(web).settings.audit.retention_days == DAYS  # the default
        assert registered_job("kernel.purge_security_logs").tenant_scoped is False
        assert execute("kernel.purge_security_logs", None) == "done"  # as the worker runs it

        assert db.session.get(PlatformSecurityEntry, platform_old) is None
        assert db.session.get(PlatformSecurityEntry, platform_kept) is not None
        for info in (tenant, other):
            with tenant_context(info):
                db.session.expire_all()
                assert db.session.get(AuditEntry, gone[info.slug]) is None
                assert db.session.get(AuditEntry, kept[info.slug]) is not None
        # The purge left its permission behind in no later transaction.
        with tenant_context(tenant):
            refused(sa.delete(AuditEntry).where(AuditEntry.id == kept[tenant.slug]))


def test_a_shorter_configured_retention_purges_more_but_never_below_the_floor(web, tenant):
    with web.app_context(), tenant_context(tenant):
        sixty, ten = add_tenant_entry(60), add_tenant_entry(10)
        security_log.purge_expired(45)
        db.session.expire_all()
        assert db.session.get(AuditEntry, sixty) is None and db.session.get(AuditEntry, ten) is not None
        security_log.purge_expired(1)  # raised to the floor of 30 days
        assert db.session.get(AuditEntry, ten) is not None


def test_the_retention_setting_refuses_less_than_the_floor():
    assert AuditSettings().retention_days == DAYS
    with pytest.raises(ValueError, match="greater than or equal to 30"):
        AuditSettings(retention_days=7)
    assert security_log.RETENTION_FLOOR_DAYS == 30


def test_the_purge_is_scheduled_daily(web):
    schedule = kernel(web).registries["schedules"]["kernel.purge-security-logs"]
    assert schedule.job == "kernel.purge_security_logs" and schedule.interval == 24 * 3600
