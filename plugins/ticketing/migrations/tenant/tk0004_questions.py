"""Ticketing: questions asked at checkout, and the answers stored on orders and tickets.

Revision ID: tk0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "tk0004"
down_revision = "tk0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("help_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("options", pg.ARRAY(sa.String(200)), nullable=False, server_default="{}"),
        sa.Column("scope", sa.String(16), nullable=False, server_default="per_order"),
        sa.Column("required", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("ticket_type_ids", pg.ARRAY(sa.Uuid()), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('text', 'choice', 'checkbox', 'date')", name="ck_questions_kind"),
        sa.CheckConstraint("scope IN ('per_order', 'per_ticket')", name="ck_questions_scope"),
    )
    op.create_index("ix_questions_event_id", "questions", ["event_id"])
    # Answers keyed by question id: {"<question id>": "value"}.
    for table in ("orders", "tickets"):
        op.add_column(table, sa.Column("answers", pg.JSONB(), nullable=False, server_default="{}"))


def downgrade() -> None:
    for table in ("tickets", "orders"):
        op.drop_column(table, "answers")
    op.drop_index("ix_questions_event_id", table_name="questions")
    op.drop_table("questions")
