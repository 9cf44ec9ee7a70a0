"""Benchmark plugin: the one-row table its routes read.

Revision ID: bench0001
"""
import sqlalchemy as sa
from alembic import op

revision = "bench0001"
down_revision = None
branch_labels = ("benchroute",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("label", sa.String(100), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bench_items")
