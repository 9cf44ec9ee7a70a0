"""Payments: the tax on the platform's fee in each card payment, so receipts show the fees as charged.

Revision ID: pay0003
"""

import sqlalchemy as sa
from alembic import op

revision = "pay0003"
down_revision = "pay0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("payments_attempts",
                  sa.Column("fee_tax_minor", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("payments_attempts",
                  sa.Column("fee_tax_rate_bp", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("payments_attempts", "fee_tax_rate_bp")
    op.drop_column("payments_attempts", "fee_tax_minor")
