"""Payments: card payments disputed by the cardholder (chargebacks), as Stripe last reported them.

Revision ID: pay0002
"""

import sqlalchemy as sa
from alembic import op

revision = "pay0002"
down_revision = "pay0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments_disputes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("stripe_dispute_id", sa.String(255), nullable=False, unique=True),
        sa.Column(
            "attempt_id", sa.Uuid(), sa.ForeignKey("payments_attempts.id", ondelete="RESTRICT"), nullable=False
        ),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False, server_default=""),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("evidence_due_by", sa.DateTime(timezone=True)),
        # The `created` of the newest Stripe event applied: an older one delivered late changes nothing.
        sa.Column("last_event_created", sa.BigInteger()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("amount_minor >= 0", name="ck_payments_disputes_amount_not_negative"),
    )
    op.create_index("ix_payments_disputes_order_id", "payments_disputes", ["order_id"])
    op.create_index("ix_payments_disputes_created_at", "payments_disputes", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_disputes_created_at", table_name="payments_disputes")
    op.drop_index("ix_payments_disputes_order_id", table_name="payments_disputes")
    op.drop_table("payments_disputes")
