"""The transactional outbox against real PostgreSQL and Redis: nothing announced is lost or doubled."""

from __future__ import annotations

import socket

import job_probe as probe
import pytest
import redis
import sqlalchemy as sa
from redis.backoff import NoBackoff
from redis.retry import Retry

from bilten_core.db import db
from bilten_core.jobs import push, registered_job
from bilten_core.kernel import kernel
from bilten_core.outbox import OutboxRow, announce, deliver
from bilten_core.tenancy.context import TenantRequired, tenant_context
from plugins.pages.models import Page
from plugins.pages.services import create_page
from tenants.service import set_plugin

pytestmark = pytest.mark.usefixtures("clean_jobs")


class RedisOutage:
    """Points the kernel's Redis client at a port nobody listens on, until :meth:`end`."""

    def __init__(self, app):
        self.kernel = kernel(app)
        self.working = self.kernel.redis
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # No client-side retries: the test needs the failure, not redis-py's patience.
        self.kernel.redis = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))

    def end(self):
        self.kernel.redis = self.working


@pytest.fixture
def redis_down(jobs_app):
    outage = RedisOutage(jobs_app)
    yield outage
    outage.end()


def row(row_id):
    db.session.expire_all()
    return db.session.get(OutboxRow, row_id)


def sweep(app):
    """What the scheduler does every few seconds: run the sweep job, then the jobs it queued."""
    push(registered_job("kernel.outbox_sweep"), None, [], {})
    probe.work(app)


def announce_hello(app, tenant, payload):
    with tenant_context(probe.fresh_info(app, tenant)):
        event_id = announce("probe.hello", payload)
        db.session.commit()
    return event_id


def test_a_committed_event_reaches_handlers_once_in_its_tenant(jobs_app, make_tenant):
    tenant = make_tenant("outbox-ok")
    event_id = announce_hello(jobs_app, tenant, {"order": 7})
    assert row(event_id).delivered_at is not None  # queued right after the commit

    probe.work(jobs_app)
    sweep(jobs_app)

    assert probe.seen_of("event") == [("event", tenant.slug, event_id, "probe.hello", {"order": 7})]


def test_an_event_whose_enqueue_failed_is_delivered_once_by_the_sweep(jobs_app, make_tenant, redis_down):
    tenant = make_tenant("outbox-down")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        create_page("news", "News")
        event_id = announce("probe.hello", {"page": "news"})
        db.session.commit()  # Redis is down: the commit still succeeds

    stuck = row(event_id)
    assert stuck.delivered_at is None
    assert stuck.attempts == 1
    assert "Connection" in stuck.last_error

    redis_down.end()
    probe.work(jobs_app)
    assert probe.seen_of("event") == []  # nothing reached RQ yet

    sweep(jobs_app)
    sweep(jobs_app)

    assert probe.seen_of("event") == [("event", tenant.slug, event_id, "probe.hello", {"page": "news"})]
    assert row(event_id).delivered_at is not None


def test_a_row_is_never_queued_twice(jobs_app, make_tenant):
    tenant = make_tenant("outbox-twice")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        event_id = announce("probe.hello", {})
        db.session.flush()
        db.session.info.clear()  # as if the process died before its after-commit delivery
        db.session.commit()
    # Two sweepers meet the same row: one queues it, the other finds the job already in RQ.
    assert deliver(ids=[event_id]) == 1
    db.session.execute(sa.update(OutboxRow).where(OutboxRow.id == event_id).values(delivered_at=None))
    db.session.commit()
    assert deliver(ids=[event_id]) == 1

    probe.work(jobs_app)

    assert [e[2] for e in probe.seen_of("event")] == [event_id]


def test_a_rolled_back_transaction_announces_nothing(jobs_app, make_tenant):
    tenant = make_tenant("outbox-rollback")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        create_page("draft", "Draft")
        event_id = announce("probe.hello", {"page": "draft"})
        db.session.rollback()
        assert db.session.scalar(sa.select(Page).where(Page.slug == "draft")) is None

    assert row(event_id) is None
    probe.work(jobs_app)
    sweep(jobs_app)
    assert probe.seen_of("event") == []


def test_a_failing_handler_is_retried_until_it_succeeds(jobs_app, make_tenant):
    tenant = make_tenant("outbox-retry")
    probe.failures["event"] = 2
    event_id = announce_hello(jobs_app, tenant, {"try": "again"})

    for _attempt in range(2):
        probe.work(jobs_app)
        assert probe.seen_of("event") == []
        assert probe.release_retries(jobs_app) == 1
    probe.work(jobs_app)

    assert probe.seen_of("event") == [("event", tenant.slug, event_id, "probe.hello", {"try": "again"})]


def test_handlers_of_a_disabled_plugin_are_not_called(jobs_app, make_tenant):
    tenant = make_tenant("outbox-off")
    set_plugin(tenant.slug, probe.NAME, False)
    announce_hello(jobs_app, tenant, {})
    probe.work(jobs_app)
    assert probe.seen_of("event") == []


def test_announcing_needs_a_tenant(jobs_app):
    with pytest.raises(TenantRequired):
        announce("probe.hello", {})


def test_the_sweep_backs_off_and_gives_up_after_the_configured_attempts(
    jobs_app, make_tenant, redis_down, monkeypatch
):
    monkeypatch.setattr(kernel(jobs_app).settings.jobs, "outbox_max_attempts", 3)
    tenant = make_tenant("outbox-give-up")
    event_id = announce_hello(jobs_app, tenant, {})  # attempt 1, at commit time

    assert deliver() == 0  # attempt 2: the first retry is due at once
    backed_off = row(event_id)
    assert backed_off.attempts == 2
    delay = (backed_off.next_attempt_at - backed_off.created_at).total_seconds()
    assert delay >= kernel(jobs_app).settings.jobs.outbox_sweep_seconds
    assert deliver() == 0
    assert row(event_id).attempts == 2  # not due yet: left alone

    _make_due(event_id)
    deliver()  # attempt 3, the last
    redis_down.end()
    _make_due(event_id)
    sweep(jobs_app)

    given_up = row(event_id)
    assert given_up.attempts == 3
    assert given_up.delivered_at is None
    assert probe.seen_of("event") == []


def _make_due(row_id):
    """Time passes until the row's next attempt."""
    db.session.execute(sa.update(OutboxRow).where(OutboxRow.id == row_id).values(next_attempt_at=sa.func.now()))
    db.session.commit()


def test_the_sweep_forgets_rows_delivered_long_ago(jobs_app, make_tenant):
    tenant = make_tenant("outbox-prune")
    old_id = announce_hello(jobs_app, tenant, {"age": "old"})
    new_id = announce_hello(jobs_app, tenant, {"age": "new"})
    eight_days_ago = sa.func.now() - sa.text("interval '8 days'")
    db.session.execute(sa.update(OutboxRow).where(OutboxRow.id == old_id).values(delivered_at=eight_days_ago))
    db.session.commit()

    sweep(jobs_app)

    assert row(old_id) is None
    assert row(new_id).delivered_at is not None
