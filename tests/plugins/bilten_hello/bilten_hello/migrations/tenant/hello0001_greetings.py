"""Hello plugin: the greetings table.

Revision ID: hello0001
"""

import sqlalchemy as sa
from alembic import op

revision = "hello0001"
down_revision = None
branch_labels = ("hello",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hello_greetings",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(80), nullable=False),
        sa.Column("message", sa.String(280), nullable=False, server_default=""),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("welcomed_at", sa.DateTime(timezone=True)),
        sa.Column("staff_noticed_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("hello_greetings")
