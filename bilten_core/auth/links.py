"""Single-use, expiring links for account mail: verify an email address, reset a password.

The link carries a random secret (``secrets.token_urlsafe(32)``: 256 bits); the database keeps
only its SHA-256, so a leaked table opens no account. A link belongs to one purpose and to the
tenant it was sent for, and its URL is built from that tenant's primary domain (never from a
request's Host header, which an attacker chooses). Consuming a link locks its row and marks it
used in the caller's transaction, together with every other open link of the same purpose for
that account, so an older reset mail stops working once a newer one was used.

Each way a link can fail has its own exception type, for the security log; all of them share
one message for the person who clicked, which tells an attacker nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core.auth.models import Account, AccountToken
from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.mail import tenant_base_url
from bilten_core.tenancy.context import TenantInfo

VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"  # noqa: S105 (a link purpose, not a password)
MFA_RECOVERY = "mfa_recovery"
# Long enough to reach a mail read the next day; links that open the account are short-lived.
LIFETIMES = {
    VERIFY_EMAIL: timedelta(hours=48), RESET_PASSWORD: timedelta(hours=1), MFA_RECOVERY: timedelta(hours=1),
}
PATHS = {
    VERIFY_EMAIL: "/account/verify-email/",
    RESET_PASSWORD: "/account/reset-password/",
    MFA_RECOVERY: "/account/mfa-recovery/",
}
# token_urlsafe(32) is 43 characters; anything much longer is not ours and is not looked up.
SECRET_MAX = 100


class LinkError(Exception):
    """A link that cannot be used; ``reason`` names why for the log, :meth:`user_message` says nothing."""

    reason = "invalid"

    @staticmethod
    def user_message() -> str:
        return _("This link is not valid any more. Ask for a new one.")


class LinkNotFound(LinkError):
    """No link has this secret: mistyped, truncated or tampered with."""

    reason = "unknown"


class LinkWrongTenant(LinkError):
    """The link was sent for another tenant (or for the platform)."""

    reason = "wrong_tenant"


class LinkWrongPurpose(LinkError):
    """A link made for something else (a verification link used to reset a password)."""

    reason = "wrong_purpose"


class LinkAlreadyUsed(LinkError):
    reason = "used"


class LinkExpired(LinkError):
    reason = "expired"


class LinkAccountDisabled(LinkError):
    reason = "account_disabled"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def issue_link(account: Account, purpose: str, tenant: TenantInfo | None) -> str:
    """Store a new link for ``account`` and return its URL on ``tenant``'s domain (the platform's for None)."""
    if purpose not in LIFETIMES:
        raise ValueError(f"unknown link purpose {purpose!r}")
    secret = secrets.token_urlsafe(32)
    db.session.add(
        AccountToken(
            account_id=account.id,
            purpose=purpose,
            token_hash=hash_secret(secret),
            tenant_id=tenant.id if tenant else None,
            expires_at=datetime.now(UTC) + LIFETIMES[purpose],
        )
    )
    db.session.flush()
    return base_url(tenant) + PATHS[purpose] + secret


def base_url(tenant: TenantInfo | None) -> str:
    if tenant is not None:
        return tenant_base_url(tenant)
    settings = kernel().settings
    scheme = "https" if settings.is_production else "http"
    return f"{scheme}://{settings.tenancy.platform_domain}"


def consume_link(secret: str, purpose: str, tenant: TenantInfo | None) -> Account:
    """The account a link was issued to, marking the link used; raises a :class:`LinkError` otherwise.

    The caller commits: the link stays unused if its transaction rolls back.
    """
    if not secret or len(secret) > SECRET_MAX:
        raise LinkNotFound()
    token = db.session.scalar(
        sa.select(AccountToken).where(AccountToken.token_hash == hash_secret(secret)).with_for_update()
    )
    if token is None:
        raise LinkNotFound()
    if token.tenant_id != (tenant.id if tenant else None):
        raise LinkWrongTenant()
    if token.purpose != purpose:
        raise LinkWrongPurpose()
    if token.used_at is not None:
        raise LinkAlreadyUsed()
    now = datetime.now(UTC)
    if token.expires_at <= now:
        raise LinkExpired()
    account = db.session.get(Account, token.account_id)
    if account is None or account.is_disabled:
        raise LinkAccountDisabled()
    db.session.execute(
        sa.update(AccountToken)
        .where(
            AccountToken.account_id == account.id,
            AccountToken.purpose == purpose,
            AccountToken.used_at.is_(None),
        )
        .values(used_at=now)
    )
    return account
