"""The transactional outbox: work announced in a transaction reaches RQ only if it commits.

:func:`announce` (an event for the ``handle_event`` hook) and :meth:`JobDefinition.after_commit`
insert a row into ``shared.outbox`` through ``db.session``, in the same transaction as the change
they describe. When that transaction commits, a session listener queues the new rows on RQ and
marks them delivered; when it rolls back, the rows never existed. If Redis is unreachable at
commit time the rows simply stay undelivered and the periodic sweep (:func:`outbox_sweep`) queues
them later, backing off between attempts and giving up after ``jobs.outbox_max_attempts``.

Delivery is at least once: each row is queued as the RQ job :func:`outbox_job_id`, which RQ refuses
to queue twice while it exists, but a process that dies between queueing and marking a row
delivered makes the sweep queue it again once RQ has forgotten the job. Event handlers and jobs
must therefore be idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
import sqlalchemy as sa
import structlog
from rq.exceptions import DuplicateJobError
from sqlalchemy import event as sa_event
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, Session, mapped_column

from bilten_core.db import SharedModel, TenantSession, db
from bilten_core.jobs import JobDefinition, platform_job, push, registered_job, tenant_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant

log = structlog.get_logger("bilten.outbox")

PENDING_KEY = "bilten_outbox_pending"
SWEEP_BATCH = 200
MAX_BACKOFF_SECONDS = 3600
# Delivered rows are kept a while for inspection, then the sweep deletes them.
DELIVERED_RETENTION = timedelta(days=7)


@dataclass(frozen=True)
class Event:
    """Something that happened in a tenant, as ``handle_event`` implementations receive it."""

    id: int
    tenant_id: str
    topic: str
    payload: dict[str, Any]
    created_at: datetime


class OutboxRow(SharedModel):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False), sa.ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(sa.String(16))
    name: Mapped[str] = mapped_column(sa.String(200))
    queue: Mapped[str] = mapped_column(sa.String(50), default="default")
    payload: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(sa.Text)


# --- Writing rows (inside the caller's transaction) ---------------------------------------------


def announce(topic: str, payload: dict[str, Any] | None = None) -> int:
    """Announce an event of the current tenant, delivered to ``handle_event`` after commit.

    ``payload`` must be JSON. Returns the outbox row id, which is also the event id.
    """
    tenant = current_tenant()
    return _stage(tenant_id=tenant.id, kind="event", name=topic, queue="default", payload=payload or {})


def stage_job(definition: JobDefinition, args: list[Any], kwargs: dict[str, Any]) -> int:
    """Write the outbox row behind :meth:`JobDefinition.after_commit`."""
    tenant_id = current_tenant().id if definition.tenant_scoped else None
    return _stage(
        tenant_id=tenant_id, kind="job", name=definition.name, queue=definition.queue,
        payload={"args": args, "kwargs": kwargs},
    )


def _stage(**values: Any) -> int:
    table = OutboxRow.__table__
    row_id: int = db.session.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()
    db.session.info.setdefault(PENDING_KEY, []).append(row_id)
    return row_id


def _after_commit(session: Session) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    try:
        deliver(ids=pending)
    except Exception:
        # The commit stands; the sweep picks the rows up.
        log.exception("outbox.after_commit_failed", rows=len(pending))


def _after_rollback(session: Session) -> None:
    session.info.pop(PENDING_KEY, None)


def install_session_listeners() -> None:
    """Deliver staged rows after every commit of a Bilten session (idempotent)."""
    if not sa_event.contains(TenantSession, "after_commit", _after_commit):
        sa_event.listen(TenantSession, "after_commit", _after_commit)
        sa_event.listen(TenantSession, "after_rollback", _after_rollback)


# --- Delivering rows to RQ ----------------------------------------------------------------------


def deliver(ids: Iterable[int] | None = None, *, limit: int = SWEEP_BATCH) -> int:
    """Queue undelivered rows on RQ (``ids``, or the rows that are due); return how many were queued.

    Rows are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent sweeps and commit listeners
    never queue the same row at once.
    """
    k = kernel()
    max_attempts = k.settings.jobs.outbox_max_attempts
    table = OutboxRow.__table__
    query = sa.select(table).where(table.c.delivered_at.is_(None))
    if ids is not None:
        query = query.where(table.c.id.in_(list(ids)))
    else:
        query = query.where(table.c.next_attempt_at <= sa.func.now(), table.c.attempts < max_attempts)
    query = query.order_by(table.c.id).limit(limit).with_for_update(skip_locked=True)
    with db.engine.begin() as conn:
        rows = conn.execute(query).all()
        delivered: list[int] = []
        for row in rows:
            try:
                _queue_row(row, k.redis)
            except DuplicateJobError:
                pass  # queued before, by a delivery that died before marking the row
            except Exception as exc:
                _record_failure(conn, row, exc, max_attempts)
                if isinstance(exc, redis.RedisError):
                    break  # Redis is down: the rest of the batch would fail the same way
                continue
            delivered.append(row.id)
        # One statement marks the batch; a crash before it only queues the rows again, which their
        # job ids turn into no-ops (DuplicateJobError above).
        if delivered:
            conn.execute(sa.update(table).where(table.c.id.in_(delivered)).values(delivered_at=sa.func.now()))
    return len(delivered)


def _queue_row(row: Any, connection: redis.Redis) -> None:
    tenant_id = str(row.tenant_id) if row.tenant_id else None
    if row.kind == "event":
        definition = registered_job(dispatch_event.name)
        args = [row.id, row.name, row.payload, row.created_at.isoformat()]
        kwargs: dict[str, Any] = {}
    else:
        definition = registered_job(row.name)
        args, kwargs = row.payload.get("args", []), row.payload.get("kwargs", {})
    push(definition, tenant_id, args, kwargs, job_id=outbox_job_id(row), connection=connection)


def outbox_job_id(row: Any) -> str:
    """The RQ job id of a row: its id plus its creation time in microseconds.

    The time keeps ids unique when the row ids are not (a database recreated or restored
    against the same Redis); a job id that is already taken would otherwise swallow the row.
    """
    return f"outbox-{row.id}-{int(row.created_at.timestamp() * 1_000_000)}"


def _record_failure(conn: sa.Connection, row: Any, exc: Exception, max_attempts: int) -> None:
    attempts = row.attempts + 1
    # The first retry waits for the next sweep; later ones wait twice as long each time.
    delay = 0 if attempts <= 1 else min(kernel().settings.jobs.outbox_sweep_seconds * 2 ** (attempts - 2),
                                        MAX_BACKOFF_SECONDS)
    table = OutboxRow.__table__
    conn.execute(
        sa.update(table)
        .where(table.c.id == row.id)
        .values(
            attempts=attempts,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
            next_attempt_at=datetime.now(UTC) + timedelta(seconds=delay),
        )
    )
    if attempts >= max_attempts:
        log.error("outbox.gave_up", row=row.id, kind=row.kind, name=row.name, error=str(exc))
    else:
        log.warning("outbox.delivery_failed", row=row.id, attempts=attempts, error=str(exc))


# --- Kernel jobs --------------------------------------------------------------------------------


@tenant_job(name="kernel.dispatch_event")
def dispatch_event(event_id: int, topic: str, payload: dict[str, Any], created_at: str) -> None:
    """Call ``handle_event`` of the plugins the event's tenant has enabled."""
    event = Event(
        id=event_id, tenant_id=current_tenant().id, topic=topic, payload=payload,
        created_at=datetime.fromisoformat(created_at),
    )
    kernel().plugins.hook_for_tenant("handle_event")(event=event)


# It runs again at the next period anyway, so a failed sweep is not retried.
@platform_job(name="kernel.outbox_sweep", retries=0)
def outbox_sweep() -> None:
    """Queue every due undelivered row, a batch at a time, until a batch is short or fails."""
    while deliver() == SWEEP_BATCH:
        pass
    prune_delivered()


def prune_delivered(batch: int = 10_000) -> int:
    """Forget rows delivered longer than :data:`DELIVERED_RETENTION` ago; rows given up on stay."""
    table = OutboxRow.__table__
    doomed = (
        sa.select(table.c.id)
        .where(table.c.delivered_at < sa.func.now() - DELIVERED_RETENTION)
        .limit(batch)
        .scalar_subquery()
    )
    with db.engine.begin() as conn:
        return int(conn.execute(sa.delete(table).where(table.c.id.in_(doomed))).rowcount)

KERNEL_JOBS = [dispatch_event, outbox_sweep]
