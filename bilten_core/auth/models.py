"""Shared-schema tables of identity: accounts, their single-use links, and their tenant memberships.

Accounts span tenants (one person, one password, roles in several tenants), so they live in the
``shared`` schema. Emails are stored normalised (trimmed, lower-case): the unique constraint then
holds case-insensitively without a functional index.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import SharedModel
from bilten_core.tenancy.models import Tenant

LINK_PURPOSES = ("verify_email", "reset_password", "mfa_recovery")
EMAIL_MAX = 254  # RFC 5321's limit on a forward path, less the angle brackets
DISPLAY_NAME_MAX = 100


class Account(SharedModel):
    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True, default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    display_name: Mapped[str] = mapped_column(sa.String(DISPLAY_NAME_MAX))
    # None for accounts that sign in only through a social identity.
    password_hash: Mapped[str | None] = mapped_column(sa.Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    disabled_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))

    __table_args__ = (sa.CheckConstraint("email = lower(btrim(email))", name="email_normalised"),)

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_disabled(self) -> bool:
        return self.disabled_at is not None


class AccountToken(SharedModel):
    """A single-use link's server side: only the SHA-256 of its secret is kept."""

    __tablename__ = "account_tokens"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[str] = mapped_column(sa.String(32))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The tenant whose domain the link was sent for; None for the platform's own host.
    tenant_id: Mapped[str | None] = mapped_column(sa.ForeignKey(Tenant.id, ondelete="CASCADE"))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

    __table_args__ = (sa.CheckConstraint(f"purpose IN {LINK_PURPOSES!r}", name="purpose"),)


class Membership(SharedModel):
    """An account's role in one tenant; storage only, what a role allows is decided elsewhere."""

    __tablename__ = "memberships"

    account_id: Mapped[str] = mapped_column(sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.ForeignKey(Tenant.id, ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
