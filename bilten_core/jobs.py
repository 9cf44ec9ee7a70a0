"""Background jobs on RQ: named jobs that always run inside their tenant's schema.

A job is a :class:`JobDefinition` made with :func:`tenant_job` (or :func:`platform_job` for the
kernel's tenant-less work) and returned from a plugin's ``register_jobs`` hook. Only registered
jobs can be enqueued or run, and RQ only ever runs one function, :func:`execute`, which carries
the job's name and its tenant id as its first two arguments. The worker builds one app per
process; for every job :func:`execute` loads the tenant, refuses to run for a missing, deleted or
suspended tenant or for a plugin the tenant has disabled (it logs and finishes), enters the
tenant's context, commits on success and rolls back on error. A job that raises is retried by
RQ with a growing delay (:data:`RETRY_BACKOFF`), so jobs must be safe to run twice.

Job arguments must be JSON values (ids and strings, not model objects): ``after_commit`` keeps
them in the outbox table until the transaction commits.

Periodic work is a :class:`Schedule` from the ``register_schedules`` hook. The scheduler
(``bilten worker``) enqueues :func:`fire_schedule` on time; a tenant job then fans out to every
active tenant with the owning plugin enabled and a platform job runs once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
import structlog
from croniter import croniter
from flask import Flask
from redis import Redis
from rq import Queue, Retry
from rq.job import Job

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.plugins import PluginError
from bilten_core.tenancy.context import TenantInfo, current_tenant, tenant_context

log = structlog.get_logger("bilten.jobs")

# Seconds to wait before the 1st, 2nd, ... retry of a failed job; later retries reuse the last.
RETRY_BACKOFF = (10, 60, 300, 900, 3600)
JOBS = "jobs"
SCHEDULES = "schedules"


class UnknownJob(LookupError):
    """No job of that name is registered (its plugin is not loaded, or the name is misspelt)."""


@dataclass(frozen=True)
class JobDefinition:
    """A named background job. ``plugin`` is filled in when the registry is built."""

    name: str
    func: Callable[..., Any]
    queue: str = "default"
    retries: int = 3
    tenant_scoped: bool = True
    plugin: str | None = None

    def enqueue(self, *args: Any, **kwargs: Any) -> Job:
        """Queue the job now, for the current tenant (``TenantRequired`` without one)."""
        definition = registered_job(self.name)
        tenant_id = current_tenant().id if definition.tenant_scoped else None
        return push(definition, tenant_id, list(args), kwargs)

    def after_commit(self, *args: Any, **kwargs: Any) -> int:
        """Queue the job once the current database transaction commits; returns the outbox row id.

        Nothing is queued if the transaction rolls back, and nothing is lost if Redis is down
        at commit time: the outbox sweep delivers the row later.
        """
        from bilten_core.outbox import stage_job

        return stage_job(registered_job(self.name), list(args), kwargs)


def tenant_job(
    name: str | None = None, queue: str = "default", retries: int = 3
) -> Callable[[Callable[..., Any]], JobDefinition]:
    """Declare a job that runs for one tenant, inside that tenant's schema."""
    return _declare(name, queue, retries, tenant_scoped=True)


def platform_job(
    name: str | None = None, queue: str = "default", retries: int = 3
) -> Callable[[Callable[..., Any]], JobDefinition]:
    """Declare a kernel job that spans tenants (outbox sweep, tenant purge); it has no tenant."""
    return _declare(name, queue, retries, tenant_scoped=False)


def _declare(
    name: str | None, queue: str, retries: int, *, tenant_scoped: bool
) -> Callable[[Callable[..., Any]], JobDefinition]:
    def wrap(func: Callable[..., Any]) -> JobDefinition:
        return JobDefinition(name or _default_name(func), func, queue, retries, tenant_scoped=tenant_scoped)

    return wrap


def _default_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


@dataclass(frozen=True)
class Schedule:
    """Run ``job`` (a registered job's name) every ``interval`` seconds or on a ``cron`` expression."""

    name: str
    job: str
    cron: str | None = None
    interval: int | None = None

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.interval is None):
            raise ValueError(f"schedule {self.name!r} needs exactly one of cron or interval")
        if self.interval is not None and self.interval < 1:
            raise ValueError(f"schedule {self.name!r}: interval must be at least one second")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"schedule {self.name!r}: {self.cron!r} is not a cron expression")

    @property
    def period_seconds(self) -> int:
        """How often it fires, at most (cron expressions fire at most once a minute)."""
        return self.interval or 60


# --- Registries ---------------------------------------------------------------------------------


def configure_jobs(app: Flask) -> None:
    """Build the job and schedule registries from every loaded plugin; fail fast on mistakes."""
    k = kernel(app)
    with app.app_context():
        jobs: dict[str, JobDefinition] = {}
        for owner, item in k.plugins.collect("register_jobs"):
            if not isinstance(item, JobDefinition):
                raise PluginError(f"plugin {owner!r} returned {item!r} from register_jobs, not a JobDefinition")
            if item.name in jobs:
                raise PluginError(f"job {item.name!r} is registered by both {jobs[item.name].plugin!r} and {owner!r}")
            if item.queue not in k.settings.jobs.queues:
                raise PluginError(f"job {item.name!r} uses queue {item.queue!r}; queues: {k.settings.jobs.queues}")
            jobs[item.name] = replace(item, plugin=owner)
        schedules: dict[str, Schedule] = {}
        for owner, item in k.plugins.collect("register_schedules"):
            if not isinstance(item, Schedule):
                raise PluginError(f"plugin {owner!r} returned {item!r} from register_schedules, not a Schedule")
            if item.name in schedules:
                raise PluginError(f"schedule {item.name!r} is registered twice")
            if item.job not in jobs:
                raise PluginError(f"schedule {item.name!r} of plugin {owner!r} names unknown job {item.job!r}")
            schedules[item.name] = item
    k.registries[JOBS] = jobs
    k.registries[SCHEDULES] = schedules


def registered_job(name: str) -> JobDefinition:
    definition = kernel().registries[JOBS].get(name)
    if definition is None:
        raise UnknownJob(f"no job named {name!r} is registered")
    return definition  # type: ignore[no-any-return]


def schedules() -> dict[str, Schedule]:
    return kernel().registries[SCHEDULES]  # type: ignore[no-any-return]


# --- Enqueueing ---------------------------------------------------------------------------------


def retry_policy(retries: int) -> Retry | None:
    if retries < 1:
        return None
    intervals = [RETRY_BACKOFF[min(i, len(RETRY_BACKOFF) - 1)] for i in range(retries)]
    return Retry(max=retries, interval=intervals)


def push(
    definition: JobDefinition,
    tenant_id: str | None,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    job_id: str | None = None,
    connection: Redis | None = None,
) -> Job:
    """Put one run of ``definition`` on its RQ queue; with ``job_id``, refuse a duplicate of it.

    A duplicate raises :class:`rq.exceptions.DuplicateJobError`. Kernel code only: plugins use
    :meth:`JobDefinition.enqueue` or :meth:`JobDefinition.after_commit`.
    """
    queue = Queue(definition.queue, connection=connection or kernel().redis)
    return queue.enqueue_call(
        execute,
        args=(definition.name, tenant_id, *args),
        kwargs=kwargs,
        job_id=job_id,
        unique=job_id is not None,
        retry=retry_policy(definition.retries),
        description=f"{definition.name} tenant={tenant_id or '-'}",
    )


# --- Running ------------------------------------------------------------------------------------


def execute(job_name: str, tenant_id: str | None, *args: Any, **kwargs: Any) -> str:
    """The function RQ runs for every Bilten job; returns ``"done"`` or why it refused to run."""
    with structlog.contextvars.bound_contextvars(job=job_name, tenant_id=tenant_id):
        try:
            definition = registered_job(job_name)
        except UnknownJob:
            return _refuse("unknown job")
        if not definition.tenant_scoped:
            with tenant_context(None):
                _run(definition, args, kwargs)
            return "done"
        tenant = _runnable_tenant(definition, tenant_id)
        if isinstance(tenant, str):
            return _refuse(tenant)
        with tenant_context(tenant), structlog.contextvars.bound_contextvars(tenant=tenant.slug):
            _run(definition, args, kwargs)
        return "done"


def _runnable_tenant(definition: JobDefinition, tenant_id: Any) -> TenantInfo | str:
    """The tenant the job may run for, or why it may not run."""
    if not tenant_id:
        return "no tenant"
    try:
        uuid.UUID(tenant_id)
    except (ValueError, TypeError, AttributeError):
        return "malformed tenant id"
    tenant = kernel().resolver.load_by_id(tenant_id)
    if tenant is None:
        return "tenant does not exist"
    if not tenant.is_active:
        return f"tenant is {tenant.status}"
    if definition.plugin not in tenant.enabled_plugins:
        return f"plugin {definition.plugin!r} is disabled for this tenant"
    return tenant


def _refuse(reason: str) -> str:
    log.warning("job.refused", reason=reason)
    return f"refused: {reason}"


def _run(definition: JobDefinition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        definition.func(*args, **kwargs)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        log.exception("job.failed")
        raise


# --- Schedules ----------------------------------------------------------------------------------


@platform_job(name="kernel.fire_schedule")
def fire_schedule(schedule_name: str) -> None:
    """Enqueue one period's runs of a schedule: once, or once per tenant that runs its plugin.

    Every ``bilten worker`` runs a scheduler, so several may fire the same period; a Redis key
    that lives for most of the period lets only the first one through.
    """
    k = kernel()
    schedule = schedules().get(schedule_name)
    if schedule is None:
        log.warning("schedule.unknown", schedule=schedule_name)
        return
    claim_for = max(1, int(schedule.period_seconds * 0.9))
    if not k.redis.set(f"bilten:schedule:{schedule.name}", "1", nx=True, ex=claim_for):
        return
    definition = registered_job(schedule.job)
    if not definition.tenant_scoped:
        push(definition, None, [], {})
        return
    tenant_ids = tenants_running(definition.plugin or "")
    for tenant_id in tenant_ids:
        push(definition, tenant_id, [], {})
    log.info("schedule.fanned_out", schedule=schedule.name, tenants=len(tenant_ids))


def tenants_running(plugin: str) -> list[str]:
    """Ids of the active tenants that have ``plugin`` enabled."""
    from bilten_core.tenancy.models import Tenant, TenantPlugin

    plugins = kernel().plugins
    choices = dict(
        db.session.execute(
            sa.select(TenantPlugin.tenant_id, TenantPlugin.enabled).where(TenantPlugin.plugin == plugin)
        ).all()
    )
    active = db.session.scalars(sa.select(Tenant.id).where(Tenant.status == "active").order_by(Tenant.created_at))
    result = []
    for tenant_id in active:
        stored = {plugin: choices[tenant_id]} if tenant_id in choices else {}
        if plugin in plugins.enabled_for(stored):
            result.append(str(tenant_id))
    return result


@platform_job(name="kernel.purge_deleted_tenants")
def purge_deleted_tenants() -> None:
    """Drop the schemas of tenants whose deletion grace period is over."""
    from tenants.service import purge_deleted

    purged = purge_deleted()
    if purged:
        log.info("tenants.purged", slugs=purged)


KERNEL_JOBS = [fire_schedule, purge_deleted_tenants]
