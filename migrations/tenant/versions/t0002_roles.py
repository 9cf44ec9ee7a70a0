"""Roles a tenant defines for itself: a name, a title and the permissions they grant.

Revision ID: t0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "t0002"
down_revision = "t0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "roles",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("title", sa.String(100), nullable=False),
        sa.Column("permissions", pg.ARRAY(sa.String(100)), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("name ~ '^[a-z][a-z0-9_]{1,63}$'", name="ck_roles_name"),
    )


def downgrade() -> None:
    op.drop_table("roles")
