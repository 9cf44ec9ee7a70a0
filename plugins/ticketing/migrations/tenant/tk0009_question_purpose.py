"""Ticketing: a question's purpose, so that its answer can be the buyer's tax id or billing address on invoices.

Revision ID: tk0009
"""

import sqlalchemy as sa
from alembic import op

revision = "tk0009"
down_revision = "tk0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # "": an ordinary question; "tax_id" or "billing_address": invoices print the buyer's answer.
    op.add_column("questions", sa.Column("purpose", sa.String(32), nullable=False, server_default=""))
    op.create_check_constraint("ck_questions_purpose", "questions",
                               "purpose IN ('', 'tax_id', 'billing_address')")
    # At most one question per purpose and event, whatever two organisers save at once.
    op.create_index("uq_questions_event_purpose", "questions", ["event_id", "purpose"], unique=True,
                    postgresql_where=sa.text("purpose <> ''"))


def downgrade() -> None:
    op.drop_index("uq_questions_event_purpose", table_name="questions")
    op.drop_constraint("ck_questions_purpose", "questions", type_="check")
    op.drop_column("questions", "purpose")
