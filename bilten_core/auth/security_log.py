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
from flask import current_app

from bilten_core import audit
from bilten_core.db import SharedModel, db
from bilten_core.tenancy.context import current_tenant_or_none

# Event names, not secrets (the linter reads "PASSWORD"/"TOKEN" names as credentials).
SIGN_IN = "auth.sign_in"
SIGN_IN_FAILED = "auth.sign_in_failed"
SIGN_OUT = "auth.sign_out"
PASSWORD_RESET = "auth.password_reset"  # noqa: S105
PASSWORD_CHANGED = "auth.password_changed"  # noqa: S105
MFA_ENABLED = "auth.mfa_enabled"
MFA_DISABLED = "auth.mfa_disabled"
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

# Every action the security log shows; anything else in the audit log is business history.
EVENTS: frozenset[str] = frozenset({
    SIGN_IN, SIGN_IN_FAILED, SIGN_OUT, PASSWORD_RESET, PASSWORD_CHANGED, MFA_ENABLED, MFA_DISABLED,
    SESSION_REVOKED, TOKEN_ISSUED, TOKEN_REFUSED, TOKEN_REFRESHED, REFRESH_REFUSED, TOKEN_REVOKED,
    TOKEN_REJECTED, MEMBER_ADDED, ROLE_CHANGED, MEMBER_REMOVED, ROLE_SAVED, ROLE_DELETED,
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
