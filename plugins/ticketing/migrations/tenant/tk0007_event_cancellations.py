"""Ticketing: orders held for review, and the progress of refunding every order of a cancelled event.

Revision ID: tk0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "tk0007"
down_revision = "tk0006"
branch_labels = None
depends_on = None

ORDER_STATUSES = ("reserved", "awaiting_payment", "paid", "partially_refunded", "refunded", "cancelled", "expired")


def _order_statuses(statuses: tuple[str, ...]) -> None:
    op.drop_constraint("ck_orders_status", "orders", type_="check")
    op.create_check_constraint("ck_orders_status", "orders", "status IN ({})".format(
        ", ".join(f"'{status}'" for status in statuses)))


def upgrade() -> None:
    _order_statuses((*ORDER_STATUSES, "held_for_review"))
    op.create_table(
        "event_cancellations",
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        # Orders to settle (refund or cancel), those settled, and those whose last attempt failed.
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False, server_default="0"),
        # One entry per order that failed in the last run: its id, code and the error.
        sa.Column("failures", pg.JSONB(), nullable=False, server_default="[]"),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("status IN ('queued', 'running', 'finished')", name="ck_event_cancellations_status"),
    )


def downgrade() -> None:
    op.drop_table("event_cancellations")
    # Held orders become cancelled ones: the older schema has no review queue.
    op.execute("UPDATE orders SET status = 'cancelled' WHERE status = 'held_for_review'")
    _order_statuses(ORDER_STATUSES)
