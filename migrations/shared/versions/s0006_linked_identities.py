"""Linked identities: an account's sign-ins through an OpenID Connect provider, one per (provider, subject).

Revision ID: s0006
"""

import sqlalchemy as sa
from alembic import op

revision = "s0006"
down_revision = "s0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linked_identities",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), nullable=False),
        sa.Column("email", sa.String(254)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("provider", "subject", name="uq_linked_identities_provider_subject"),
        schema="shared",
    )
    op.create_index("ix_linked_identities_account_id", "linked_identities", ["account_id"], schema="shared")


def downgrade() -> None:
    op.drop_table("linked_identities", schema="shared")
