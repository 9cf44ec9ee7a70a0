"""Bank statement lines already imported: one row per incoming payment, so none is ever counted twice."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel


class BankLine(TenantModel):
    """An incoming bank payment seen in an import, and what it did (``outcome``)."""

    __tablename__ = "payments_bank_lines"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    # sha256 of the bank's transaction id, or of the line's content and its position among identical lines.
    fingerprint: Mapped[str] = mapped_column(sa.String(64), unique=True)
    bank_transaction_id: Mapped[str | None] = mapped_column(sa.String(200))
    booked_on: Mapped[date | None] = mapped_column(sa.Date)
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3))
    reference: Mapped[str] = mapped_column(sa.Text)
    payer_name: Mapped[str] = mapped_column(sa.String(200))
    # paid, amount_differs, currency_differs, no_order, several_orders, already_paid, order_closed, places_lost
    outcome: Mapped[str] = mapped_column(sa.String(24))
    order_id: Mapped[str | None] = mapped_column(sa.ForeignKey("orders.id", ondelete="SET NULL"))
    imported_by: Mapped[str | None] = mapped_column(sa.String(200))
    imported_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
