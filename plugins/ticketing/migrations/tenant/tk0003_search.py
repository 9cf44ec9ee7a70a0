"""Ticketing: full-text search over events (a generated, weighted tsvector and its GIN index).

Revision ID: tk0003
"""

from alembic import op

revision = "tk0003"
down_revision = "tk0002"
branch_labels = None
depends_on = None

# array_to_string is only STABLE (it depends on the element type's output function); for varchar
# it never changes, and a generated column needs an IMMUTABLE expression, hence this wrapper.
TAGS_FUNCTION = """
CREATE FUNCTION ticketing_tags_text(tags varchar[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(array_to_string(tags, ' '), '') $$
"""

# Title weighs most, then category and tags, then the venue, then the description (tags stripped).
SEARCH_VECTOR = """
ALTER TABLE events ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('english'::regconfig, coalesce(category, '')), 'B')
    || setweight(to_tsvector('english'::regconfig, ticketing_tags_text(tags)), 'B')
    || setweight(to_tsvector('english'::regconfig,
                             coalesce(venue_name, '') || ' ' || coalesce(venue_address, '')), 'C')
    || setweight(to_tsvector('english'::regconfig,
                             regexp_replace(coalesce(description_html, ''), '<[^>]*>', ' ', 'g')), 'D')
) STORED
"""


def upgrade() -> None:
    op.execute(TAGS_FUNCTION)
    op.execute(SEARCH_VECTOR)
    op.execute("CREATE INDEX ix_events_search_vector ON events USING gin (search_vector)")
    op.execute("CREATE INDEX ix_events_category ON events (lower(category))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_events_category")
    op.execute("DROP INDEX ix_events_search_vector")
    op.execute("ALTER TABLE events DROP COLUMN search_vector")
    op.execute("DROP FUNCTION ticketing_tags_text(varchar[])")
