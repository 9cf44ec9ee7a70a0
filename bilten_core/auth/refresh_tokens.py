"""Rotating refresh tokens: the stored half of API sign-in, bound to one tenant.

A refresh token is an opaque random secret (``secrets.token_urlsafe(32)``); the database keeps
only its SHA-256. Every use rotates it: the presented token is marked rotated and a new one of
the same *family* (one sign-in) is issued. A rotated token presented again means two parties
hold the family, the client and whoever copied a token, and we cannot tell which is which, so
the whole family is revoked (RFC 9700, section 4.14.2) and both must sign in again. Each
token lives :data:`DEFAULT_LIFETIME` from its own issue, so a sign-in lasts as long as it is
used at least that often.

Rotation locks the token's row (``SELECT ... FOR UPDATE``): of two rotations racing with the
same token, the second waits for the first to commit, then sees a rotated token, which is
reuse. Clients must therefore not refresh the same token twice in parallel.

Functions add their changes to the caller's transaction; the caller commits, including when
:class:`RefreshTokenReused` is raised, since the family's revocation is the point of it.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import structlog
from flask import has_request_context, request
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.audit import USER_AGENT_MAX
from bilten_core.auth.models import Account
from bilten_core.db import SharedModel, db
from bilten_core.jobs import platform_job
from bilten_core.tenancy.context import TenantInfo
from bilten_core.tenancy.models import Tenant

DEFAULT_LIFETIME = timedelta(days=30)
# token_urlsafe(32) is 43 characters; longer input is not ours and is not hashed and looked up.
TOKEN_MAX = 100
IP_MAX = 45
# Expired tokens stay this long, so a late retry is reported as expired rather than unknown; then they go.
PURGE_AFTER = timedelta(days=7)

log = structlog.get_logger("bilten.auth.refresh_tokens")


class RefreshToken(SharedModel):
    __tablename__ = "refresh_tokens"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey(Account.id, ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey(Tenant.id, ondelete="CASCADE"))
    family_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    rotated_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(32))
    # How the family's sign-in was authenticated (RFC 8176 values, space-separated): every access
    # token minted from the family carries them, so a refresh cannot skip or gain a second factor.
    auth_methods: Mapped[str] = mapped_column(sa.String(64))
    user_agent: Mapped[str | None] = mapped_column(sa.String(USER_AGENT_MAX))
    ip: Mapped[str | None] = mapped_column(sa.String(IP_MAX))


class RefreshTokenError(Exception):
    """The token cannot be used; ``code`` says why, in the API's error vocabulary."""

    code = "invalid_refresh_token"


class UnknownRefreshToken(RefreshTokenError):
    """No token has this hash: mistyped, truncated, made up, or its account is gone."""

    code = "invalid_refresh_token"


class RefreshTokenWrongTenant(RefreshTokenError):
    """Issued on another tenant's host."""

    code = "wrong_tenant"


class RefreshTokenExpired(RefreshTokenError):
    code = "expired_refresh_token"


class RefreshTokenRevoked(RefreshTokenError):
    """Revoked: signed out, credentials changed, the family was caught being reused, or the account disabled."""

    code = "revoked_refresh_token"


class RefreshTokenReused(RefreshTokenError):
    """Already rotated: the family has just been revoked (the caller must commit that)."""

    code = "refresh_token_reused"


@dataclass(frozen=True)
class Rotation:
    """The outcome of a rotation: the new token and whose it is."""

    token: str
    account_id: str
    family_id: str
    auth_methods: tuple[str, ...]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(
    account: Account, tenant: TenantInfo, *, auth_methods: Iterable[str], lifetime: timedelta = DEFAULT_LIFETIME
) -> str:
    """A new refresh token, the first of a new family, for ``account`` on ``tenant``."""
    return _issue(account.id, tenant.id, str(uuid.uuid4()), " ".join(sorted(set(auth_methods))), lifetime)


def rotate(token: str, tenant: TenantInfo, *, lifetime: timedelta = DEFAULT_LIFETIME) -> Rotation:
    """Exchange ``token`` for a new one of its family; raises a :class:`RefreshTokenError` saying why not."""
    record = _locked(token)
    if record is None:
        raise UnknownRefreshToken("no such refresh token")
    if record.tenant_id != tenant.id:
        raise RefreshTokenWrongTenant("refresh token issued for another tenant")
    if record.revoked_at is not None:
        raise RefreshTokenRevoked(f"refresh token revoked ({record.revoked_reason})")
    if record.rotated_at is not None:
        revoke_family(record.family_id, "reuse_detected")
        raise RefreshTokenReused("refresh token already rotated; its family is revoked")
    now = datetime.now(UTC)
    if record.expires_at <= now:
        raise RefreshTokenExpired("refresh token expired")
    account = db.session.get(Account, record.account_id)
    if account is None or account.is_disabled:
        revoke_family(record.family_id, "account_disabled")
        raise RefreshTokenRevoked("the account is disabled")
    record.rotated_at = now
    new_token = _issue(record.account_id, record.tenant_id, record.family_id, record.auth_methods, lifetime)
    return Rotation(
        token=new_token,
        account_id=record.account_id,
        family_id=record.family_id,
        auth_methods=tuple(record.auth_methods.split()),
    )


def find(token: str) -> RefreshToken | None:
    """The stored record of ``token``, whatever its state; ``None`` if unknown."""
    if not token or len(token) > TOKEN_MAX:
        return None
    return db.session.scalar(sa.select(RefreshToken).where(RefreshToken.token_hash == hash_token(token)))


def revoke_family(family_id: str, reason: str) -> int:
    """Revoke every live token of one sign-in; returns how many were still live."""
    return _revoke(RefreshToken.family_id == family_id, reason)


def revoke_all_for_account(account_id: str, reason: str) -> int:
    """Revoke every live refresh token of ``account_id`` on every tenant; returns how many."""
    return _revoke(RefreshToken.account_id == account_id, reason)


def purge_expired() -> int:
    """Delete tokens expired more than :data:`PURGE_AFTER` ago; returns how many."""
    cutoff = datetime.now(UTC) - PURGE_AFTER
    result = db.session.execute(sa.delete(RefreshToken).where(RefreshToken.expires_at < cutoff))
    return int(result.rowcount)  # type: ignore[attr-defined]


@platform_job(name="kernel.purge_refresh_tokens")
def purge_refresh_tokens() -> None:
    """Keep the table to live tokens and recent history (scheduled daily by the kernel)."""
    purged = purge_expired()
    if purged:
        log.info("refresh_tokens.purged", count=purged)


def _revoke(condition: sa.ColumnElement[bool], reason: str) -> int:
    result = db.session.execute(
        sa.update(RefreshToken)
        .where(condition, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=sa.func.now(), revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _locked(token: str) -> RefreshToken | None:
    if not token or len(token) > TOKEN_MAX:
        return None
    # populate_existing: a row already in the session is re-read under the lock, not served stale.
    return db.session.scalar(
        sa.select(RefreshToken)
        .where(RefreshToken.token_hash == hash_token(token))
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def _issue(account_id: str, tenant_id: str, family_id: str, auth_methods: str, lifetime: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    record = RefreshToken(
        account_id=account_id,
        tenant_id=tenant_id,
        family_id=family_id,
        auth_methods=auth_methods,
        token_hash=hash_token(token),
        expires_at=datetime.now(UTC) + lifetime,
    )
    if has_request_context():
        record.user_agent = request.user_agent.string[:USER_AGENT_MAX] or None
        record.ip = request.remote_addr
    db.session.add(record)
    db.session.flush()
    return token
