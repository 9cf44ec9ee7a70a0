"""Shared-schema tables of the second factor: TOTP and SMS enrolments, SMS codes, remembered devices."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import SharedModel


class AccountMfa(SharedModel):
    """An account's second factors and backup code hashes.

    TOTP is in force once ``confirmed_at`` is set, SMS once ``phone_confirmed_at`` is; MFA is on
    while either is.
    """

    __tablename__ = "account_mfa"

    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    totp_secret_sealed: Mapped[str | None] = mapped_column(sa.Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    phone_e164: Mapped[str | None] = mapped_column(sa.String(16))
    phone_confirmed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    backup_code_hashes: Mapped[list[str]] = mapped_column(sa.ARRAY(sa.Text), default=list)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class SmsCode(SharedModel):
    """A six-digit code sent by SMS; only its keyed hash is stored, and it works once until ``expires_at``."""

    __tablename__ = "mfa_sms_codes"
    __table_args__ = (sa.Index("ix_mfa_sms_codes_account_id_created_at", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("accounts.id", ondelete="CASCADE")
    )
    purpose: Mapped[str] = mapped_column(sa.String(16))
    phone_e164: Mapped[str] = mapped_column(sa.String(16))
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class RememberedDevice(SharedModel):
    """A browser that may skip the second step until ``expires_at``; only its token's SHA-256 is kept."""

    __tablename__ = "mfa_remembered_devices"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    account_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    user_agent: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
