"""Platform administrators, and a retention purge as the only way rows leave the platform security log.

An account listed in ``platform_admins`` may read the platform's own security log; nothing else
about it changes. The log's trigger still refuses every ``UPDATE`` and ``TRUNCATE``; a ``DELETE``
passes only inside a transaction that turned on ``bilten.retention_purge`` and only for a row older
than ``bilten.retention_days`` (never fewer than 30): a stray or injected statement still cannot
remove recent history, and nothing can rewrite it.

Revision ID: s0008
"""

import sqlalchemy as sa
from alembic import op

revision = "s0008"
down_revision = "s0007"
branch_labels = None
depends_on = None

# Kept in step with bilten_core.auth.security_log.RETENTION_FLOOR_DAYS.
RETENTION_FLOOR_DAYS = 30

PURGEABLE = f"""
CREATE OR REPLACE FUNCTION shared.security_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('bilten.retention_purge', true) = 'on' THEN
        IF OLD.occurred_at < now() - make_interval(days => greatest(
            coalesce(nullif(current_setting('bilten.retention_days', true), '')::int, 0), {RETENTION_FLOOR_DAYS}
        )) THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the security log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION shared.security_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the security log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "platform_admins",
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("granted_by", sa.String(64)),
        schema="shared",
    )
    op.execute(PURGEABLE)


def downgrade() -> None:
    op.execute(APPEND_ONLY)
    op.drop_table("platform_admins", schema="shared")
