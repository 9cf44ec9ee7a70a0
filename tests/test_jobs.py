"""Jobs on real RQ workers and PostgreSQL: tenant isolation, refusals, retries, schedules, the command."""

from __future__ import annotations

import signal
import types

import job_probe as probe
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from bilten_core import hookimpl
from bilten_core.cli import build_cli
from bilten_core.db import db
from bilten_core.jobs import (
    JobDefinition,
    Schedule,
    UnknownJob,
    push,
    registered_job,
    schedules,
    tenant_job,
)
from bilten_core.kernel import kernel
from bilten_core.plugins import PluginError
from bilten_core.tenancy.context import TenantRequired, tenant_context
from bilten_core.worker import cron_scheduler, worker_connection
from plugins.pages.models import Page
from plugins.pages.services import create_page
from tenants.service import delete_tenant, set_plugin, set_status

pytestmark = pytest.mark.usefixtures("clean_jobs")


def page_titles(app, tenant):
    with tenant_context(probe.fresh_info(app, tenant)):
        return {p.slug: p.title for p in db.session.scalars(sa.select(Page))}


def test_a_job_runs_in_its_tenants_schema_and_sees_no_other_tenant(jobs_app, make_tenant):
    first, second = make_tenant("jobs-a"), make_tenant("jobs-b")
    for tenant in (first, second):
        with tenant_context(probe.fresh_info(jobs_app, tenant)):
            create_page("about", "About us")
            create_page("faq", "Questions")
            db.session.commit()

    with tenant_context(probe.fresh_info(jobs_app, first)):
        job = probe.retitle_pages.enqueue(" (edited)")
    assert job.args[:2] == ("jobprobe.retitle_pages", first.id)  # the job carries its tenant
    probe.work(jobs_app)

    assert job.return_value() == "done"
    assert probe.seen_of("retitle") == [("retitle", first.slug, ["about", "faq"])]
    assert page_titles(jobs_app, first) == {"about": "About us (edited)", "faq": "Questions (edited)"}
    assert page_titles(jobs_app, second) == {"about": "About us", "faq": "Questions"}


def test_a_job_cannot_be_queued_or_run_without_a_tenant(jobs_app):
    with pytest.raises(TenantRequired):
        probe.record.enqueue("no tenant")
    with pytest.raises(TenantRequired):
        probe.record.after_commit("no tenant")

    # Queued behind the kernel's back with no tenant, it is refused when it runs.
    anonymous = push(registered_job("jobprobe.record"), None, ["no tenant"], {})
    malformed = push(registered_job("jobprobe.record"), "not-a-uuid", ["bad id"], {})
    probe.work(jobs_app)

    assert anonymous.return_value() == "refused: no tenant"
    assert malformed.return_value() == "refused: malformed tenant id"
    assert probe.seen == []


def test_only_registered_jobs_can_be_queued(jobs_app, make_tenant):
    @tenant_job(name="jobprobe.not_registered")
    def stray() -> None:
        raise AssertionError("must never run")

    with tenant_context(probe.fresh_info(jobs_app, make_tenant("jobs-stray"))), pytest.raises(UnknownJob):
        stray.enqueue()
    # A job left in Redis by a plugin that is gone is refused too.
    orphan = push(JobDefinition("jobprobe.gone", stray.func), None, [], {})
    probe.work(jobs_app)
    assert orphan.return_value() == "refused: unknown job"


def test_a_job_does_not_run_for_a_tenant_that_disabled_its_plugin(jobs_app, make_tenant):
    tenant = make_tenant("jobs-off")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        job = probe.record.enqueue("queued while enabled")
    set_plugin(tenant.slug, probe.NAME, False)

    probe.work(jobs_app)

    assert job.return_value() == "refused: plugin 'jobprobe' is disabled for this tenant"
    assert probe.seen == []


def test_a_job_does_not_run_for_a_suspended_or_deleted_tenant(jobs_app, make_tenant):
    suspended, deleted = make_tenant("jobs-susp"), make_tenant("jobs-del")
    jobs = {}
    for tenant in (suspended, deleted):
        with tenant_context(probe.fresh_info(jobs_app, tenant)):
            jobs[tenant.slug] = probe.record.enqueue(tenant.slug)
    set_status(suspended.slug, "suspended", "unpaid")
    delete_tenant(deleted.slug)

    probe.work(jobs_app)

    assert jobs[suspended.slug].return_value() == "refused: tenant is suspended"
    assert jobs[deleted.slug].return_value() == "refused: tenant is deleted"
    assert probe.seen == []


def test_a_failing_job_rolls_back_and_is_retried_with_backoff(jobs_app, make_tenant):
    tenant = make_tenant("jobs-retry")
    probe.failures["job"] = 1
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        job = probe.add_page_then_fail.enqueue("from-job")

    probe.work(jobs_app)
    job.refresh()
    assert job.get_status() == "scheduled"  # waiting for its retry, not lost
    assert job.retries_left == 2
    assert "from-job" not in page_titles(jobs_app, tenant)  # the failed attempt wrote nothing

    assert probe.release_retries(jobs_app) == 1
    probe.work(jobs_app)

    assert job.return_value() == "done"
    assert page_titles(jobs_app, tenant)["from-job"] == "Written by a job"
    assert probe.seen_of("added") == [("added", tenant.slug, "from-job")]


def test_schedules_fan_out_to_each_active_tenant_that_runs_the_plugin(jobs_app, make_tenant):
    running, disabled, suspended = make_tenant("sched-on"), make_tenant("sched-off"), make_tenant("sched-susp")
    set_plugin(disabled.slug, probe.NAME, False)
    set_status(suspended.slug, "suspended")
    assert schedules()["jobprobe.tick"].interval == 600

    # Two workers' schedulers fire the same period; the tenants still run once each.
    for _ in range(2):
        cron_scheduler(worker_connection(jobs_app), list(schedules().values())).enqueue_jobs()
    probe.work(jobs_app)

    ticked = [entry[1] for entry in probe.seen_of("tick")]
    assert ticked.count(running.slug) == 1
    assert disabled.slug not in ticked
    assert suspended.slug not in ticked


def test_schedules_are_validated():
    with pytest.raises(ValueError, match="exactly one of cron or interval"):
        Schedule("both", "job", cron="* * * * *", interval=60)
    with pytest.raises(ValueError, match="exactly one of cron or interval"):
        Schedule("neither", "job")
    with pytest.raises(ValueError, match="not a cron expression"):
        Schedule("bad", "job", cron="every tuesday")
    assert Schedule("nightly", "job", cron="0 3 * * *").period_seconds == 60


def test_a_plugin_cannot_register_a_job_twice_or_schedule_an_unknown_job(make_app):
    clash = types.ModuleType("clash")
    clash.register_jobs = hookimpl(lambda: [probe.record])  # type: ignore[attr-defined]
    with pytest.raises(PluginError, match="registered by both"):
        make_app(extra_plugins=(("jobprobe", probe), ("clash", clash)))

    dangling = types.ModuleType("dangling")
    dangling.register_schedules = hookimpl(  # type: ignore[attr-defined]
        lambda: [Schedule("dangling", "no.such.job", interval=60)]
    )
    with pytest.raises(PluginError, match=r"unknown job .no\.such\.job."):
        make_app(extra_plugins=(("dangling", dangling),))


def test_worker_command_runs_queued_jobs_and_refuses_unknown_queues(jobs_app, make_tenant):
    tenant = make_tenant("jobs-cli")
    with tenant_context(probe.fresh_info(jobs_app, tenant)):
        create_page("about", "About")
        db.session.commit()
        probe.retitle_pages.enqueue("!")
    runner = CliRunner()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = runner.invoke(build_cli(jobs_app), ["worker", "--burst", "--no-scheduler"], obj=jobs_app)
        refused = runner.invoke(build_cli(jobs_app), ["worker", "--queues", "default,nope"], obj=jobs_app)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert result.exit_code == 0, result.output
    assert "listening on queues: default, mail, media, webhooks" in result.output
    assert "scheduler: off" in result.output
    # The forking worker ran the job in a child process: its effect is in the database.
    assert page_titles(jobs_app, tenant)["about"] == "About!"
    assert refused.exit_code == 2
    assert "unknown queue(s) nope" in refused.output


def test_kernel_schedules_sweep_the_outbox_and_purge_deleted_tenants(jobs_app, make_tenant, monkeypatch):
    settings = kernel(jobs_app).settings
    kernel_schedules = {s.job: s for s in schedules().values()}
    assert kernel_schedules["kernel.outbox_sweep"].interval == settings.jobs.outbox_sweep_seconds
    assert kernel_schedules["kernel.purge_deleted_tenants"].interval == 3600

    gone = make_tenant("jobs-purge")
    monkeypatch.setattr(settings.tenancy, "deletion_grace_hours", 0.0)
    delete_tenant(gone.slug)
    purge = push(registered_job("kernel.purge_deleted_tenants"), None, [], {})
    probe.work(jobs_app)

    assert purge.return_value() == "done"
    schema = db.session.scalar(
        sa.text("SELECT nspname FROM pg_namespace WHERE nspname = :name"), {"name": gone.schema}
    )
    assert schema is None
