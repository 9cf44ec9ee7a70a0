"""Tenancy: tenants, domains, per-tenant plugin choices, and the transactional outbox.

Revision ID: s0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "s0001"
down_revision = None
branch_labels = ("kernel",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(63), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schema_name", sa.String(63), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("suspended_reason", sa.Text()),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
        sa.Column("schema_dropped_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("status IN ('active', 'suspended', 'deleted')", name="ck_tenants_status"),
        schema="shared",
    )
    op.create_table(
        "domains",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("hostname", sa.String(253), nullable=False, unique=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("verification_token", sa.String(64)),
        schema="shared",
    )
    op.create_index("ix_domains_tenant_id", "domains", ["tenant_id"], schema="shared")
    op.create_table(
        "tenant_plugins",
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("plugin", sa.String(100), primary_key=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        schema="shared",
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE")),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("queue", sa.String(50), nullable=False, server_default="default"),
        sa.Column("payload", pg.JSONB(), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.CheckConstraint("kind IN ('event', 'job')", name="ck_outbox_kind"),
        schema="shared",
    )
    op.create_index(
        "ix_outbox_undelivered",
        "outbox",
        ["next_attempt_at"],
        schema="shared",
        postgresql_where=sa.text("delivered_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox", schema="shared")
    op.drop_table("tenant_plugins", schema="shared")
    op.drop_table("domains", schema="shared")
    op.drop_table("tenants", schema="shared")
