"""``bilten worker``: RQ workers over the kernel's queues, with the periodic scheduler beside them.

One app is built per worker process (by the ``bilten`` command); every job runs inside that app's
context. The forking worker gives each job a fresh child process, so a crashing or leaking job
cannot take the worker down; the child drops the database connections it inherited.

The scheduler is RQ's :class:`rq.cron.CronScheduler`, run in a child process: every
:class:`~bilten_core.jobs.Schedule` becomes a cron entry that enqueues the kernel's
``kernel.fire_schedule`` job, which fans the work out to tenants. The worker also runs RQ's own
scheduler, which moves retries whose delay is over back onto their queues.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from multiprocessing.process import BaseProcess
from typing import Any

import click
import redis
from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.job import Job

from bilten_core.db import db
from bilten_core.jobs import Schedule, execute, schedules
from bilten_core.kernel import kernel


class _AppContextMixin:
    """Runs every job inside the worker's app context."""

    app: Flask

    def perform_job(self, job: Job, queue: Queue, execution: Any) -> bool:
        with self.app.app_context():
            return super().perform_job(job, queue, execution)  # type: ignore[misc,no-any-return]


class BiltenWorker(_AppContextMixin, Worker):
    """Forks a child per job (RQ's default)."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        # Connections inherited through fork() belong to the parent; never share a socket.
        with self.app.app_context():
            db.engine.dispose(close=False)
        super().main_work_horse(job, queue)


class BiltenSimpleWorker(_AppContextMixin, SimpleWorker):
    """Runs jobs in its own process (tests, debugging)."""

    def __init__(self, *args: Any, app: Flask, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app


def worker_connection(app: Flask) -> redis.Redis:
    # No socket timeout: a worker blocks on its queues for minutes at a time.
    return redis.Redis.from_url(kernel(app).settings.redis.url or "")


def make_worker(
    app: Flask, queues: Sequence[str] | None = None, *, simple: bool = False, connection: redis.Redis | None = None
) -> Worker | SimpleWorker:
    """A worker for ``queues`` (default: every configured queue), bound to ``app``."""
    connection = connection or worker_connection(app)
    names = list(queues or kernel(app).settings.jobs.queues)
    worker_class = BiltenSimpleWorker if simple else BiltenWorker
    return worker_class([Queue(name, connection=connection) for name in names], connection=connection, app=app)


class _ChildCronScheduler(CronScheduler):
    """A cron scheduler that stops when the worker that started it is gone, even if killed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parent_pid = os.getppid()

    def heartbeat(self) -> None:
        if os.getppid() != self.parent_pid:
            raise StopRequested()
        super().heartbeat()


def cron_scheduler(
    connection: redis.Redis, entries: Sequence[Schedule], scheduler_class: type[CronScheduler] = CronScheduler
) -> CronScheduler:
    """An RQ cron scheduler that fires every schedule through ``kernel.fire_schedule``."""
    scheduler = scheduler_class(connection=connection)
    for schedule in entries:
        scheduler.register(
            execute,
            queue_name="default",
            args=("kernel.fire_schedule", None, schedule.name),
            interval=schedule.interval,
            cron=schedule.cron,
            name=f"bilten:{schedule.name}",
        )
    return scheduler


def _run_scheduler(redis_url: str, entries: list[Schedule]) -> None:
    cron_scheduler(redis.Redis.from_url(redis_url), entries, _ChildCronScheduler).start()


def start_scheduler(app: Flask) -> BaseProcess:
    """Run the cron scheduler in a child process that ends with the worker."""
    entries = list(schedules().values())
    process = multiprocessing.get_context("fork").Process(
        target=_run_scheduler, args=(kernel(app).settings.redis.url, entries), name="bilten-scheduler", daemon=True
    )
    process.start()
    return process


@click.command("worker", help="Run a worker for the background job queues, with the scheduler beside it.")
@click.option("--queues", "-q", default=None, help="Comma-separated queues to work on (default: all).")
@click.option("--burst", is_flag=True, help="Work until the queues are empty, then exit.")
@click.option("--no-scheduler", is_flag=True, help="Do not run periodic schedules in this process.")
def worker_command(queues: str | None, burst: bool, no_scheduler: bool) -> None:
    from flask import current_app

    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    settings = kernel(app).settings
    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else list(settings.jobs.queues)
    unknown = [name for name in names if name not in settings.jobs.queues]
    if unknown or not names:
        raise click.BadParameter(
            f"unknown queue(s) {', '.join(unknown)}; the queues are {', '.join(settings.jobs.queues)}",
            param_hint="--queues",
        )
    connection = worker_connection(app)
    worker = make_worker(app, names, connection=connection)
    entries = list(schedules().values())
    click.echo(f"worker {worker.name} listening on queues: {', '.join(names)}")
    click.echo(f"redis: {_where(connection)}")
    if no_scheduler:
        click.echo("scheduler: off")
    elif burst:
        # One pass: whatever is due now (every interval schedule) is fired once.
        cron_scheduler(connection, entries).enqueue_jobs()
        click.echo(f"scheduler: fired due schedules once ({len(entries)} schedules)")
    else:
        start_scheduler(app)
        click.echo("scheduler: " + ", ".join(_describe(s) for s in entries))
    worker.work(burst=burst, with_scheduler=True)


def _where(connection: redis.Redis) -> str:
    """Where the worker's Redis is, without credentials."""
    kwargs = connection.connection_pool.connection_kwargs
    place = kwargs.get("path") or f"{kwargs.get('host')}:{kwargs.get('port')}"
    return f"{place} db {kwargs.get('db', 0)}"


def _describe(schedule: Schedule) -> str:
    return f"{schedule.name} ({f'every {schedule.interval} s' if schedule.interval else schedule.cron})"
