"""Invoices and credit notes as issued, and the counters that number them.

A document is a snapshot: seller, buyer, lines and amounts are copied when it is issued, so later
changes to the organiser's settings, the order or the catalogue never change an issued document.
Amounts are integer minor units; a credit note's are negative.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel

INVOICE = "invoice"
CREDIT_NOTE = "credit_note"
KINDS = (INVOICE, CREDIT_NOTE)


class Counter(TenantModel):
    """The last number given in one series (a kind of document) and year."""

    __tablename__ = "invoicing_counters"

    series: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    year: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    last_number: Mapped[int] = mapped_column(sa.Integer)


class Document(TenantModel):
    __tablename__ = "invoicing_documents"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    number: Mapped[str] = mapped_column(sa.String(60))
    year: Mapped[int] = mapped_column(sa.Integer)
    sequence: Mapped[int] = mapped_column(sa.Integer)
    order_id: Mapped[str] = mapped_column(sa.ForeignKey("orders.id", ondelete="RESTRICT"))
    order_code: Mapped[str] = mapped_column(sa.String(16))
    refund_id: Mapped[str | None] = mapped_column(sa.ForeignKey("refunds.id", ondelete="RESTRICT"))
    invoice_id: Mapped[str | None] = mapped_column(sa.ForeignKey("invoicing_documents.id", ondelete="RESTRICT"))
    currency: Mapped[str] = mapped_column(sa.String(3))
    net_minor: Mapped[int] = mapped_column(sa.BigInteger)
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger)
    total_minor: Mapped[int] = mapped_column(sa.BigInteger)
    # [{"rate_bp", "net_minor", "tax_minor", "total_minor"}], by rate.
    tax_breakdown: Mapped[list[dict[str, Any]]] = mapped_column(pg.JSONB, default=list)
    # {"name", "address", "tax_id"} (and the buyer's "email").
    seller: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    buyer: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
    # [{"description", "quantity", "unit_minor", "rate_bp", "net_minor", "tax_minor", "total_minor"}]
    lines: Mapped[list[dict[str, Any]]] = mapped_column(pg.JSONB, default=list)
    issued_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    receipt_mailed_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
