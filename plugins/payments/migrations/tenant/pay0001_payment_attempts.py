"""Payments: each attempt to pay an order through a provider (a Checkout Session, a PayPal order...).

Revision ID: pay0001
"""

import sqlalchemy as sa
from alembic import op

revision = "pay0001"
down_revision = None
branch_labels = ("payments",)
depends_on = "tk0005"


def upgrade() -> None:
    op.create_table(
        "payments_attempts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        # 1, 2, ... per order: part of every idempotency key sent to the provider for this attempt.
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("application_fee_minor", sa.BigInteger(), nullable=False, server_default="0"),
        # The provider's object the buyer pays through (Checkout Session, PayPal order) and the payment itself.
        sa.Column("provider_reference", sa.String(255), unique=True),
        sa.Column("payment_reference", sa.String(255), unique=True),
        sa.Column("redirect_url", sa.Text()),
        sa.Column("account", sa.String(255)),
        sa.Column("outcome", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("order_id", "attempt", name="uq_payments_attempts_order_attempt"),
        sa.CheckConstraint("amount_minor >= 0", name="ck_payments_attempts_amount_not_negative"),
        sa.CheckConstraint(
            "status IN ('open', 'succeeded', 'failed', 'expired', 'refunded')", name="ck_payments_attempts_status"
        ),
    )
    op.create_index("ix_payments_attempts_order_id", "payments_attempts", ["order_id"])
    op.create_index("ix_payments_attempts_status", "payments_attempts", ["status"])


def downgrade() -> None:
    op.drop_index("ix_payments_attempts_status", table_name="payments_attempts")
    op.drop_index("ix_payments_attempts_order_id", table_name="payments_attempts")
    op.drop_table("payments_attempts")
