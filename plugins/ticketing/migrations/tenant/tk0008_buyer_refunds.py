"""Ticketing: each event's policy for refunds the buyer asks for, the fee the organiser keeps, and the requests.

Revision ID: tk0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "tk0008"
down_revision = "tk0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # None: buyers cannot ask for refunds; a number: until that many hours before the start.
    op.add_column("events", sa.Column("buyer_refund_hours", sa.Integer()))
    op.add_column("events", sa.Column("refund_fee_percent_bp", sa.Integer(), nullable=False, server_default="0"))
    op.create_check_constraint("ck_events_buyer_refund_hours", "events",
                               "buyer_refund_hours IS NULL OR buyer_refund_hours >= 0")
    op.create_check_constraint("ck_events_refund_fee_percent_bp", "events",
                               "refund_fee_percent_bp >= 0 AND refund_fee_percent_bp <= 10000")
    op.create_table(
        "buyer_refund_requests",
        # The one-time key of the form the buyer sent: a second sending finds this row.
        sa.Column("form_key", sa.String(64), primary_key=True),
        sa.Column("order_id", sa.Uuid(), sa.ForeignKey("orders.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("ticket_ids", pg.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("buyer_refund_requests")
    op.drop_column("events", "refund_fee_percent_bp")
    op.drop_column("events", "buyer_refund_hours")
