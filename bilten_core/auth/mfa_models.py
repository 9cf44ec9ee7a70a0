"""Shared-schema tables of the second factor: TOTP enrolments and remembered devices."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import SharedModel


class AccountMfa(SharedModel):
    """An account's TOTP secret (sealed) and backup code hashes; in force once confirmed."""

    __tablename__ = "account_mfa"

    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    totp_secret_sealed: Mapped[str] = mapped_column(sa.Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    backup_code_hashes: Mapped[list[str]] = mapped_column(sa.ARRAY(sa.Text), default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class RememberedDevice(SharedModel):
    """A browser that may skip the second step until ``expires_at``; only its token's SHA-256 is kept."""

    __tablename__ = "mfa_remembered_devices"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
