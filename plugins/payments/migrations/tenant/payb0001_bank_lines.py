"""Payments: incoming bank transfers imported from statements, each recorded once.

Revision ID: payb0001
"""

import sqlalchemy as sa
from alembic import op

revision = "payb0001"
down_revision = None
branch_labels = ("payments_bank",)
depends_on = "tk0005"


def upgrade() -> None:
    op.create_table(
        "payments_bank_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        # The line's identity across imports: the same statement imported twice finds its lines here.
        sa.Column("fingerprint", sa.String(64), nullable=False, unique=True),
        sa.Column("bank_transaction_id", sa.String(200)),
        sa.Column("booked_on", sa.Date()),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False, server_default=""),
        sa.Column("payer_name", sa.String(200), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(24), nullable=False),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="SET NULL")),
        sa.Column("imported_by", sa.String(200)),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor > 0", name="ck_payments_bank_lines_incoming"),
    )
    op.create_index("ix_payments_bank_lines_order_id", "payments_bank_lines", ["order_id"])
    op.create_index("ix_payments_bank_lines_imported_at", "payments_bank_lines", ["imported_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_bank_lines_imported_at", table_name="payments_bank_lines")
    op.drop_index("ix_payments_bank_lines_order_id", table_name="payments_bank_lines")
    op.drop_table("payments_bank_lines")
