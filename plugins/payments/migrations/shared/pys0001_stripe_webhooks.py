"""Payments: tenants' connected Stripe accounts and the provider events received, each recorded once.

Revision ID: pys0001
"""

import sqlalchemy as sa
from alembic import op

revision = "pys0001"
down_revision = None
branch_labels = ("payments_shared",)
depends_on = "s0001"


def upgrade() -> None:
    op.create_table(
        "payments_stripe_accounts",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"),
            nullable=False, unique=True,
        ),
        sa.Column("stripe_account_id", sa.String(255), nullable=False, unique=True),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("payouts_enabled", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("details_submitted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_event_created", sa.BigInteger()),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="shared",
    )
    op.create_table(
        "payments_provider_events",
        sa.Column("provider", sa.String(32), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("account", sa.String(255)),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="shared",
    )


def downgrade() -> None:
    op.drop_table("payments_provider_events", schema="shared")
    op.drop_table("payments_stripe_accounts", schema="shared")
