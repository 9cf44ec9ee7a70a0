"""The audit trail: who did what to which object, when, and from where.

:func:`record` adds its row to the current database session, so the entry commits with the
change it describes and a rollback drops both. Entries live in the tenant's own schema.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click
import sqlalchemy as sa
from flask import g, has_request_context, request
from rq import get_current_job
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.auth.identity import current_identity
from bilten_core.db import TenantModel, db
from bilten_core.tenancy.context import current_tenant

USER_AGENT_MAX = 300


class AuditColumns:
    """The columns of every log of who did what: the tenant audit log and the platform security log."""

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    actor_type: Mapped[str] = mapped_column(sa.String(32))
    actor_id: Mapped[str | None] = mapped_column(sa.String(64))
    action: Mapped[str] = mapped_column(sa.String(100))
    object_type: Mapped[str] = mapped_column(sa.String(100))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    ip: Mapped[str | None] = mapped_column(sa.String(45))
    user_agent: Mapped[str | None] = mapped_column(sa.String(USER_AGENT_MAX))
    request_id: Mapped[str | None] = mapped_column(sa.String(64))


class AuditEntry(AuditColumns, TenantModel):
    __tablename__ = "audit_log"


@dataclass(frozen=True)
class Actor:
    """Who acted: ``type`` is ``user``, ``anonymous``, ``cli``, ``job`` or ``system``; ``id`` says which one."""

    type: str
    id: str | None = None


_acting: ContextVar[Actor | None] = ContextVar("bilten_audit_actor", default=None)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute every entry recorded inside the block to ``actor`` (sign-in sets the user this way)."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def current_actor() -> Actor:
    """The explicit actor if one is set, else what is running: a request, a job, a command, the system."""
    actor = _acting.get()
    if actor is not None:
        return actor
    if has_request_context():
        # Whoever the request authenticated (a session or a token) acts; else nobody we know.
        identity = current_identity()
        return Actor("user", identity.account_id) if identity is not None else Actor("anonymous")
    job = get_current_job()
    if job is not None:
        return Actor("job", job.id)
    if click.get_current_context(silent=True) is not None:
        return Actor("cli", _os_user())
    return Actor("system")


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # containers may run as a uid with no name
        return None


def record(
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits it with its change).

    ``changes`` is stored as JSON; values JSON cannot hold (dates, decimals, ids) are stored as text.
    """
    current_tenant()  # fail here, with a clear error, rather than at flush time
    entry: AuditEntry = new_entry(AuditEntry, action, object_type, object_id, changes, actor)
    db.session.add(entry)
    return entry


def new_entry(
    model: type[Any],
    action: str,
    object_type: str,
    object_id: str | int | None,
    changes: dict[str, Any] | None,
    actor: Actor | None,
) -> Any:
    """An unsaved log row of ``model`` (any table with the audit columns), with who, what and from where."""
    actor = actor or current_actor()
    entry = model(
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        changes=json.loads(json.dumps(changes or {}, default=str)),
    )
    if has_request_context():
        entry.ip = request.remote_addr
        entry.user_agent = request.user_agent.string[:USER_AGENT_MAX] or None
        entry.request_id = g.get("request_id")
    return entry


def history(object_type: str, object_id: str | int | None = None, limit: int = 100) -> list[AuditEntry]:
    """The current tenant's entries about an object (or a whole type when ``object_id`` is None), newest first."""
    query = sa.select(AuditEntry).where(AuditEntry.object_type == object_type)
    if object_id is not None:
        query = query.where(AuditEntry.object_id == str(object_id))
    query = query.order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(db.session.scalars(query))
