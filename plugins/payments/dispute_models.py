"""Disputes (chargebacks) of card payments: one row per Stripe dispute, in the tenant's schema."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel


class Dispute(TenantModel):
    """A cardholder's dispute of a card payment, with its state as Stripe last reported it."""

    __tablename__ = "payments_disputes"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    stripe_dispute_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    attempt_id: Mapped[str] = mapped_column(sa.ForeignKey("payments_attempts.id", ondelete="RESTRICT"))
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="RESTRICT"))
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reason: Mapped[str] = mapped_column(sa.String(64), default="")
    # Stripe's status: warning_needs_response, warning_under_review, needs_response, under_review (open);
    # won, lost, warning_closed, prevented (closed).
    status: Mapped[str] = mapped_column(sa.String(32))
    evidence_due_by: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_event_created: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
