"""A retention purge is the only way rows leave the audit log.

The trigger still refuses every ``UPDATE`` and ``TRUNCATE``; a ``DELETE`` passes only inside a
transaction that turned on ``bilten.retention_purge`` and only for a row older than
``bilten.retention_days`` (never fewer than 30), so recent history cannot be removed and none
can be rewritten.

Revision ID: t0005
"""
from alembic import op

revision = "t0005"
down_revision = "t0004"
branch_labels = None
depends_on = None

# Kept in step with bilten_core.auth.security_log.RETENTION_FLOOR_DAYS.
RETENTION_FLOOR_DAYS = 30

# Unqualified: the migration runner points search_path at the tenant's schema.
PURGEABLE = f"""
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('bilten.retention_purge', true) = 'on' THEN
        IF OLD.occurred_at < now() - make_interval(days => greatest(
            coalesce(nullif(current_setting('bilten.retention_days', true), '')::int, 0), {RETENTION_FLOOR_DAYS}
        )) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.execute(PURGEABLE)


def downgrade() -> None:
    op.execute(APPEND_ONLY)
