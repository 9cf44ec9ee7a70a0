"""Ticketing: events, series, ticket types, price tiers and quotas.

Revision ID: tk0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "tk0001"
down_revision = None
branch_labels = ("ticketing",)
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "event_series",
        _id(),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "events",
        _id(),
        sa.Column("slug", sa.String(120), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description_html", sa.Text(), nullable=False, server_default=""),
        sa.Column("category", sa.String(60)),
        sa.Column("tags", ARRAY(sa.String(40)), nullable=False, server_default="{}"),
        sa.Column("venue_name", sa.String(200)),
        sa.Column("venue_address", sa.String(500)),
        sa.Column("latitude", sa.Numeric(9, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        sa.Column("online_url", sa.String(500)),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visibility", sa.String(16), nullable=False, server_default="public"),
        sa.Column("status", sa.String(16), nullable=False, server_default="draft"),
        sa.Column("organizer_email", sa.String(254)),
        sa.Column("refund_policy", sa.Text(), nullable=False, server_default=""),
        sa.Column("capacity", sa.Integer()),
        sa.Column("cover_image_url", sa.String(500)),
        sa.Column("series_id", sa.Uuid(), sa.ForeignKey("event_series.id", ondelete="SET NULL")),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("ends_at >= starts_at", name="ck_events_ends_after_start"),
        sa.CheckConstraint(
            "status IN ('draft', 'published', 'sales_closed', 'ended', 'cancelled', 'postponed')",
            name="ck_events_status",
        ),
        sa.CheckConstraint("visibility IN ('public', 'unlisted', 'private')", name="ck_events_visibility"),
        sa.CheckConstraint("capacity IS NULL OR capacity >= 0", name="ck_events_capacity"),
    )
    op.create_index("ix_events_starts_at", "events", ["starts_at"])
    op.create_table(
        "ticket_types",
        _id(),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("kind", sa.String(24), nullable=False, server_default="paid"),
        sa.Column("price_minor", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("tax_rate_bp", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("tax_inclusive", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("sales_start", sa.DateTime(timezone=True)),
        sa.Column("sales_end", sa.DateTime(timezone=True)),
        sa.Column("min_per_order", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("max_per_order", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("addon_for_id", sa.Uuid(), sa.ForeignKey("ticket_types.id", ondelete="CASCADE")),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("kind IN ('free', 'paid', 'pay_what_you_want')", name="ck_ticket_types_kind"),
        sa.CheckConstraint("price_minor >= 0", name="ck_ticket_types_price"),
        sa.CheckConstraint("tax_rate_bp BETWEEN 0 AND 10000", name="ck_ticket_types_tax_rate"),
        sa.CheckConstraint("min_per_order >= 1 AND max_per_order >= min_per_order", name="ck_ticket_types_limits"),
    )
    op.create_index("ix_ticket_types_event_id", "ticket_types", ["event_id"])
    op.create_table(
        "price_tiers",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "ticket_type_id", sa.Uuid(), sa.ForeignKey("ticket_types.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("price_minor", sa.BigInteger(), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True)),
        sa.Column("up_to_sold", sa.Integer()),
        sa.Column("position", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("price_minor >= 0", name="ck_price_tiers_price"),
    )
    op.create_index("ix_price_tiers_ticket_type_id", "price_tiers", ["ticket_type_id"])
    op.create_table(
        "quotas",
        _id(),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("held", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("size >= 0", name="ck_quotas_quota_size_not_negative"),
        sa.CheckConstraint("held >= 0 AND held <= size", name="ck_quotas_quota_held_within_size"),
    )
    op.create_index("ix_quotas_event_id", "quotas", ["event_id"])
    op.create_table(
        "quota_ticket_types",
        sa.Column("quota_id", sa.Uuid(), sa.ForeignKey("quotas.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "ticket_type_id", sa.Uuid(), sa.ForeignKey("ticket_types.id", ondelete="CASCADE"), primary_key=True
        ),
    )


def downgrade() -> None:
    for table in ("quota_ticket_types", "quotas", "price_tiers", "ticket_types", "events", "event_series"):
        op.drop_table(table)
