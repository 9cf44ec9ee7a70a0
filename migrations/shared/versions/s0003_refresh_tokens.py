"""Refresh tokens: the stored, rotating half of API sign-in, kept only as SHA-256 hashes.

Revision ID: s0003
"""
import sqlalchemy as sa
from alembic import op

revision = "s0003"
down_revision = "s0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_reason", sa.String(32)),
        sa.Column("auth_methods", sa.String(64), nullable=False),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("ip", sa.String(45)),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        schema="shared",
    )
    op.create_index("ix_refresh_tokens_account_id", "refresh_tokens", ["account_id"], schema="shared")
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], schema="shared")


def downgrade() -> None:
    op.drop_table("refresh_tokens", schema="shared")
