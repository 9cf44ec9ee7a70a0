"""Accounts: people who sign in, their single-use links, and their roles in tenants.

Revision ID: s0002
"""
import sqlalchemy as sa
from alembic import op

revision = "s0002"
down_revision = "s0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.Text()),
        sa.Column("email_verified_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("disabled_at", sa.DateTime(timezone=True)),
        sa.Column("password_changed_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("email", name="uq_accounts_email"),
        # Emails are stored normalised; the database refuses any other spelling.
        sa.CheckConstraint("email = lower(btrim(email))", name="ck_accounts_email_normalised"),
        schema="shared",
    )
    op.create_table(
        "account_tokens",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE")),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("token_hash", name="uq_account_tokens_token_hash"),
        sa.CheckConstraint(
            "purpose IN ('verify_email', 'reset_password')", name="ck_account_tokens_purpose"
        ),
        schema="shared",
    )
    op.create_index("ix_account_tokens_account_id", "account_tokens", ["account_id"], schema="shared")
    op.create_table(
        "memberships",
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="shared",
    )
    op.create_index("ix_memberships_tenant_id", "memberships", ["tenant_id"], schema="shared")


def downgrade() -> None:
    op.drop_table("memberships", schema="shared")
    op.drop_table("account_tokens", schema="shared")
    op.drop_table("accounts", schema="shared")
