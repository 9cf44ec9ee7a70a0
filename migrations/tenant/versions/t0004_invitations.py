"""Invitations to join a tenant's team: only the SHA-256 of each mailed secret is stored.

At most one invitation per address is pending (neither accepted nor revoked): inviting the
address again revokes the earlier one in the same transaction.

Revision ID: t0004
"""
import sqlalchemy as sa
from alembic import op

revision = "t0004"
down_revision = "t0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("invited_by", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("accepted_by", sa.Uuid()),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("email = lower(btrim(email))", name="ck_invitations_email_normalised"),
        sa.CheckConstraint("accepted_at IS NULL OR revoked_at IS NULL", name="ck_invitations_one_outcome"),
    )
    op.create_index(
        "ix_invitations_pending_email",
        "invitations",
        ["email"],
        unique=True,
        postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_invitations_pending_email", table_name="invitations")
    op.drop_table("invitations")
