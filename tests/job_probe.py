"""A plugin for the job, outbox, mail and notification tests, and helpers to run real RQ workers.

Its jobs and hooks record what they saw in :data:`seen`; the tests run workers in this process
(``SimpleWorker`` against the real Redis), so the records are visible to them.
"""

from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa
from flask import Flask
from rq import Queue

from bilten_core import PluginMeta, hookimpl
from bilten_core.db import db
from bilten_core.jobs import Schedule, tenant_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import TenantInfo, current_tenant
from bilten_core.worker import make_worker, worker_connection
from plugins.pages.models import Page
from plugins.pages.services import create_page

NAME = "jobprobe"
PLUGIN = PluginMeta(title="Job probe", description="Records what jobs and hooks see.")

seen: list[tuple[Any, ...]] = []
# How many more times the probe's failing job and event handler raise before they succeed.
failures = {"job": 0, "event": 0}


@tenant_job(name="jobprobe.retitle_pages")
def retitle_pages(suffix: str) -> None:
    pages = list(db.session.scalars(sa.select(Page).order_by(Page.slug)))
    for page in pages:
        page.title += suffix
    seen.append(("retitle", current_tenant().slug, [p.slug for p in pages]))


@tenant_job(name="jobprobe.record")
def record(value: str) -> None:
    seen.append(("record", current_tenant().slug, value))


@tenant_job(name="jobprobe.add_page_then_fail")
def add_page_then_fail(slug: str) -> None:
    create_page(slug, "Written by a job")
    if failures["job"] > 0:
        failures["job"] -= 1
        raise RuntimeError("the probe job fails on purpose")
    seen.append(("added", current_tenant().slug, slug))


@tenant_job(name="jobprobe.tick")
def tick() -> None:
    seen.append(("tick", current_tenant().slug))


@hookimpl
def register_jobs() -> list[Any]:
    return [retitle_pages, record, add_page_then_fail, tick]


@hookimpl
def register_schedules() -> list[Schedule]:
    return [Schedule("jobprobe.tick", "jobprobe.tick", interval=600)]


@hookimpl
def handle_event(event: Any) -> None:
    if failures["event"] > 0:
        failures["event"] -= 1
        raise RuntimeError("the probe handler fails on purpose")
    seen.append(("event", current_tenant().slug, event.id, event.topic, event.payload))


@hookimpl
def deliver_notification(notification: Any) -> None:
    seen.append(("notification", current_tenant().slug, notification.kind, notification.title, notification.link))


def build_app(make_app: Any, **overrides: Any) -> Flask:
    return make_app(extra_plugins=((NAME, sys.modules[__name__]),), **overrides)  # type: ignore[no-any-return]


def reset(app: Flask) -> None:
    """Forget earlier tests: empty every queue and the probe's records."""
    seen.clear()
    failures.update(job=0, event=0)
    connection = worker_connection(app)
    for name in kernel(app).settings.jobs.queues:
        queue = Queue(name, connection=connection)
        queue.empty()
        for job_id in queue.scheduled_job_registry.get_job_ids():
            queue.scheduled_job_registry.remove(job_id, delete_job=True)


def work(app: Flask, queues: list[str] | None = None) -> None:
    """Run a real RQ worker until the queues are empty."""
    make_worker(app, queues, simple=True).work(burst=True)


def release_retries(app: Flask) -> int:
    """Time passes: move every job waiting for a retry back onto its queue now."""
    connection = worker_connection(app)
    released = 0
    for name in kernel(app).settings.jobs.queues:
        queue = Queue(name, connection=connection)
        registry = queue.scheduled_job_registry
        for job_id in registry.get_job_ids():
            job = queue.fetch_job(job_id)
            registry.remove(job_id)
            if job is not None:
                queue.enqueue_job(job)
                released += 1
    return released


def fresh_info(app: Flask, tenant: TenantInfo) -> TenantInfo:
    """The tenant as ``app`` (with the probe loaded) sees it now."""
    with app.app_context():
        info = kernel(app).resolver.load_by_id(tenant.id)
    assert info is not None
    return info


def seen_of(kind: str) -> list[tuple[Any, ...]]:
    return [entry for entry in seen if entry[0] == kind]
