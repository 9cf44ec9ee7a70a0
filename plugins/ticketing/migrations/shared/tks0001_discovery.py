"""Ticketing discovery: the cross-tenant listing of public, published events on the platform's home.

Revision ID: tks0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR

revision = "tks0001"
down_revision = None
branch_labels = ("ticketing_shared",)
depends_on = "s0001"

SEARCH_VECTOR = """
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, coalesce(category, '') || ' ' || tags_text), 'B')
    || setweight(to_tsvector('english'::regconfig,
                             coalesce(venue_name, '') || ' ' || coalesce(venue_address, '')
                             || ' ' || organizer_name), 'C')
    || setweight(to_tsvector('english'::regconfig, summary), 'D')
"""


def upgrade() -> None:
    op.create_table(
        "ticketing_listings",
        sa.Column(
            "tenant_id", sa.Uuid(), sa.ForeignKey("shared.tenants.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(120), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False, server_default=""),
        sa.Column("category", sa.String(60)),
        sa.Column("tags", ARRAY(sa.String(40)), nullable=False, server_default="{}"),
        sa.Column("tags_text", sa.Text(), nullable=False, server_default=""),
        sa.Column("venue_name", sa.String(200)),
        sa.Column("venue_address", sa.String(500)),
        sa.Column("latitude", sa.Numeric(9, 6)),
        sa.Column("longitude", sa.Numeric(9, 6)),
        sa.Column("online", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("min_price_minor", sa.BigInteger()),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("is_free", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("url", sa.String(600), nullable=False),
        sa.Column("organizer_name", sa.String(200), nullable=False),
        sa.Column("cover_image_url", sa.String(500)),
        sa.Column("search_vector", TSVECTOR(), sa.Computed(SEARCH_VECTOR, persisted=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="shared",
    )
    op.create_index("ix_ticketing_listings_starts_at", "ticketing_listings", ["starts_at"], schema="shared")
    op.create_index(
        "ix_ticketing_listings_search_vector", "ticketing_listings", ["search_vector"],
        schema="shared", postgresql_using="gin",
    )


def downgrade() -> None:
    op.drop_table("ticketing_listings", schema="shared")
