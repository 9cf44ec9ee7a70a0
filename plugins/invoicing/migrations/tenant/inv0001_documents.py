"""Invoicing: invoices and credit notes, and the counters that number them without gaps.

Revision ID: inv0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "inv0001"
down_revision = None
branch_labels = ("invoicing",)
depends_on = "tk0005"


def upgrade() -> None:
    op.create_table(
        "invoicing_counters",
        sa.Column("series", sa.String(16), primary_key=True),
        # 0 for a series that does not restart each year.
        sa.Column("year", sa.Integer(), primary_key=True),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.CheckConstraint("last_number > 0", name="ck_invoicing_counters_positive"),
    )
    op.create_table(
        "invoicing_documents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.String(60), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("order_code", sa.String(16), nullable=False),
        sa.Column("refund_id", sa.Uuid(), sa.ForeignKey("refunds.id", ondelete="RESTRICT")),
        # The invoice a credit note corrects.
        sa.Column("invoice_id", sa.Uuid(), sa.ForeignKey("invoicing_documents.id", ondelete="RESTRICT")),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_breakdown", pg.JSONB(), nullable=False, server_default="[]"),
        sa.Column("seller", pg.JSONB(), nullable=False, server_default="{}"),
        sa.Column("buyer", pg.JSONB(), nullable=False, server_default="{}"),
        sa.Column("lines", pg.JSONB(), nullable=False, server_default="[]"),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("receipt_mailed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("kind IN ('invoice', 'credit_note')", name="ck_invoicing_documents_kind"),
        sa.CheckConstraint(
            "(kind = 'invoice' AND refund_id IS NULL AND invoice_id IS NULL AND total_minor >= 0)"
            " OR (kind = 'credit_note' AND refund_id IS NOT NULL AND invoice_id IS NOT NULL AND total_minor <= 0)",
            name="ck_invoicing_documents_kind_fields",
        ),
        sa.CheckConstraint("net_minor + tax_minor = total_minor", name="ck_invoicing_documents_sum"),
        sa.UniqueConstraint("kind", "number", name="uq_invoicing_documents_kind_number"),
        sa.UniqueConstraint("refund_id", name="uq_invoicing_documents_refund_id"),
    )
    # One invoice per order, however often its payment is announced.
    op.create_index(
        "uq_invoicing_documents_invoice_order", "invoicing_documents", ["order_id"], unique=True,
        postgresql_where=sa.text("kind = 'invoice'"),
    )
    op.create_index("ix_invoicing_documents_order_id", "invoicing_documents", ["order_id"])
    op.create_index("ix_invoicing_documents_issued_at", "invoicing_documents", ["issued_at", "id"])


def downgrade() -> None:
    op.drop_table("invoicing_documents")
    op.drop_table("invoicing_counters")
