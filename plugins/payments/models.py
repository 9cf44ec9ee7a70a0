"""The payments plugin's shared tables: each tenant's Stripe account and every provider event received."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import SharedModel, TenantModel


class StripeAccount(SharedModel):
    """A tenant's connected Stripe account and its status, as Stripe last reported it."""

    __tablename__ = "payments_stripe_accounts"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.Uuid(as_uuid=False), sa.ForeignKey("tenants.id", ondelete="CASCADE"), unique=True
    )
    stripe_account_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(default=False)
    payouts_enabled: Mapped[bool] = mapped_column(default=False)
    details_submitted: Mapped[bool] = mapped_column(default=False)
    # The `created` of the newest event applied: an older one delivered late changes nothing.
    last_event_created: Mapped[int | None] = mapped_column(sa.BigInteger)
    # Counts the status updates applied, so that a repeated effect shows.
    version: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class ProviderEvent(SharedModel):
    """A webhook event, written in the transaction of its effect: its key makes a repeat a no-op."""

    __tablename__ = "payments_provider_events"

    provider: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    type: Mapped[str] = mapped_column(sa.String(100))
    account: Mapped[str | None] = mapped_column(sa.String(255))
    # What handling it did: applied, stale, unknown_account, unhandled.
    outcome: Mapped[str] = mapped_column(sa.String(32))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class PaymentAttempt(TenantModel):
    """One attempt to pay an order through a provider; an order may need several (a declined card, a new link)."""

    __tablename__ = "payments_attempts"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="RESTRICT"))
    provider: Mapped[str] = mapped_column(sa.String(40))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    # open, succeeded, failed, expired, refunded
    status: Mapped[str] = mapped_column(sa.String(16))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    application_fee_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    # The tax on the platform's fee, part of ``application_fee_minor``, and its rate when the attempt began.
    fee_tax_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    fee_tax_rate_bp: Mapped[int] = mapped_column(sa.Integer, default=0)
    provider_reference: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    payment_reference: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    redirect_url: Mapped[str | None] = mapped_column(sa.Text)
    account: Mapped[str | None] = mapped_column(sa.String(255))
    # Why it ended as it did: paid, issued_late, refunded_late, declined, expired...
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )
