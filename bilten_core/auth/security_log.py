"""The security log: the names of security events, and where each one is written.

Inside a tenant, a security event is an entry of that tenant's audit log (so it commits, or rolls
back, with the change it describes). Events with no tenant (the platform's own host) go to the
shared ``platform_security_log`` table. Both are append-only: the application has no path that
changes or deletes an entry, and database triggers refuse ``UPDATE``, ``DELETE`` and ``TRUNCATE``.

An email address typed at a failed sign-in is stored only as a keyed hash, so the log does not
collect the addresses (or passwords typed into the wrong field) of people who have no account.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import sqlalchemy as sa
import structlog
from flask import current_app
from sqlalchemy.exc import DBAPIError

from bilten_core import audit
from bilten_core.db import SharedModel, db
from bilten_core.jobs import platform_job
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none

log = structlog.get_logger("bilten.auth.security_log")

# Event names, not secrets (the linter reads "PASSWORD"/"TOKEN" names as credentials).
SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
SIGN_OUT = "auth.sign_out"
PASSWORD_RESET = "auth.password_reset"  # noqa: S105
PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105
MFA_ENABLED = "auth.mfa_enabled"
MFA_DISABLED = "auth.mfa_disabled"
MFA_FAILED = "auth.mfa_failed"
MFA_BACKUP_CODES_REGENERATED = "auth.mfa_backup_codes_regenerated"
MFA_RECOVERY_REQUESTED = "auth.mfa_recovery_requested"
MFA_DEVICE_FORGOTTEN = "auth.mfa_device_forgotten"
SMS_SENT = "auth.sms_sent"
SESSION_REVOKED = "auth.session_revoked"
TOKEN_ISSUED = "auth.token_issued"  # noqa: S105
TOKEN_REFUSED = "auth.token_refused"  # noqa: S105
TOKEN_REFRESHED = "auth.token_refreshed"  # noqa: S105
REFRESH_REFUSED = "auth.refresh_refused"
TOKEN_REVOKED = "auth.token_revoked"  # noqa: S105
TOKEN_REJECTED = "auth.token_rejected"  # noqa: S105
MEMBER_ADDED = "team.member_added"
ROLE_CHANGED = "team.role_changed"
MEMBER_REMOVED = "team.member_removed"
ROLE_SAVED = "team.role_saved"
ROLE_DELETED = "team.role_deleted"
PLATFORM_ADMIN_GRANTED = "platform.admin_granted"
PLATFORM_ADMIN_REVOKED = "platform.admin_revoked"
INVITATION_SENT = "team.invitation_sent"
INVITATION_ACCEPTED = "team.invitation_accepted"
INVITATION_REVOKED = "team.invitation_revoked"
SOCIAL_SIGN_IN_REFUSED = "auth.social_sign_in_refused"
IDENTITY_LINKED = "auth.identity_linked"
IDENTITY_UNLINKED = "auth.identity_unlinked"

# Every action the security log shows; anything else in the audit log is business history.
EVENTS: frozenset[str] = frozenset({
    SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, PASSWORD_RESET, PASSWORD_CHANGED, MFA_ENABLED, MFA_DISABLED,
    MFA_FAILED, MFA_BACKUP_CODES_REGENERATED, MFA_RECOVERY_REQUESTED, MFA_DEVICE_FORGOTTEN, SMS_SENT,
    SESSION_REVOKED, TOKEN_ISSUED, TOKEN_REFUSED, TOKEN_REFRESHED, REFRESH_REFUSED, TOKEN_REVOKED,
    TOKEN_REJECTED, MEMBER_ADDED, ROLE_CHANGED, MEMBER_REMOVED, ROLE_SAVED, ROLE_DELETED,
    PLATFORM_ADMIN_GRANTED, PLATFORM_ADMIN_REVOKED,
    INVITATION_SENT, INVITATION_ACCEPTED, INVITATION_REVOKED,
    SOCIAL_SIGN_IN_REFUSED, IDENTITY_LINKED, IDENTITY_UNLINKED,
})


class PlatformSecurityEntry(audit.AuditColumns, SharedModel):
    """A security event on the platform's own host, where there is no tenant audit log."""

    __tablename__ = "platform_security_log"
    __table_args__ = {"schema": "shared"}


def email_digest(email: str) -> str:
    """A keyed hash of an address: equal attempts can be correlated, the address not read back."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, email.strip().lower().encode(), hashlib.sha256).hexdigest()


def record(
    action: str,
    object_type: str,
    object_id: str | int | None = None,
    changes: dict[str, Any] | None = None,
    actor: audit.Actor | None = None,
) -> None:
    """Write a security event to the tenant's audit log, or to the platform log when there is no tenant.

    Like :func:`bilten_core.audit.record`, the entry joins the current transaction.
    """
    if action not in EVENTS:
        raise ValueError(f"{action!r} is not a security event")
    if current_tenant_or_none() is not None:
        audit.record(action, object_type, object_id, changes, actor)
        return
    db.session.add(audit.new_entry(PlatformSecurityEntry, action, object_type, object_id, changes, actor))


def tenant_events(action: str | None, offset: int, limit: int) -> tuple[int, list[audit.AuditEntry]]:
    """The current tenant's security events (one action, or all), newest first, and how many there are."""
    actions = [action] if action else sorted(EVENTS)
    where = audit.AuditEntry.action.in_(actions)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(audit.AuditEntry).where(where)) or 0
    query = (
        sa.select(audit.AuditEntry)
        .where(where)
        .order_by(audit.AuditEntry.occurred_at.desc(), audit.AuditEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(db.session.scalars(query))


def platform_events(action: str | None, offset: int, limit: int) -> tuple[int, list[PlatformSecurityEntry]]:
    """The platform's security events (one action, or all), newest first, and how many there are."""
    where = PlatformSecurityEntry.action == action if action else sa.true()
    total = db.session.scalar(sa.select(sa.func.count()).select_from(PlatformSecurityEntry).where(where)) or 0
    query = (
        sa.select(PlatformSecurityEntry)
        .where(where)
        .order_by(PlatformSecurityEntry.occurred_at.desc(), PlatformSecurityEntry.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return total, list(db.session.scalars(query))


# --- Retention -----------------------------------------------------------------------------------

# The database refuses to purge entries younger than this, whatever the setting (migrations s0008, t0005).
RETENTION_FLOOR_DAYS = 30


class RetentionPurgeFailed(RuntimeError):
    """Some tenants' audit logs could not be purged (the job is retried); the others were."""


def _allow_purge(days: int) -> None:
    """Let this transaction, and only it, delete entries older than ``days`` (the triggers check both)."""
    db.session.execute(sa.text("SELECT set_config('bilten.retention_purge', 'on', true)"))
    db.session.execute(sa.text("SELECT set_config('bilten.retention_days', :days, true)"), {"days": str(days)})


def purge_expired(days: int) -> dict[str, int]:
    """Delete entries older than ``days`` from the platform log and every tenant's audit log.

    One transaction per log, committed as it goes, so a failure in one tenant keeps the others'
    work. Returns how many entries each log lost (``"platform"`` or the tenant's slug), when any.
    """
    from tenants.service import active_tenants

    days = max(days, RETENTION_FLOOR_DAYS)
    cutoff = sa.func.now() - sa.func.make_interval(0, 0, 0, days)
    purged: dict[str, int] = {}
    _allow_purge(days)
    result = db.session.execute(sa.delete(PlatformSecurityEntry).where(PlatformSecurityEntry.occurred_at < cutoff))
    db.session.commit()
    if result.rowcount:  # type: ignore[attr-defined]
        purged["platform"] = int(result.rowcount)  # type: ignore[attr-defined]
    failed = []
    for schema, slug in active_tenants():
        audit_log = sa.table("audit_log", sa.column("occurred_at"), schema=schema)
        try:
            _allow_purge(days)
            result = db.session.execute(sa.delete(audit_log).where(audit_log.c.occurred_at < cutoff))
            db.session.commit()
        except DBAPIError as exc:  # e.g. a schema not migrated yet: the others still get purged
            db.session.rollback()
            log.error("security_logs.purge_failed", tenant=slug, error=str(exc.orig))
            failed.append(slug)
            continue
        if result.rowcount:  # type: ignore[attr-defined]
            purged[slug] = int(result.rowcount)  # type: ignore[attr-defined]
    if failed:
        raise RetentionPurgeFailed(failed)
    return purged


@platform_job(name="kernel.purge_security_logs")
def purge_security_logs() -> None:
    """Keep the audit logs and the platform security log to ``audit.retention_days`` (scheduled daily)."""
    purged = purge_expired(kernel().settings.audit.retention_days)
    if purged:
        log.info("security_logs.purged", counts=purged)
