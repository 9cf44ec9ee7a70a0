"""The platform's security log (events with no tenant), append-only like the tenants' audit logs.

Revision ID: s0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "s0005"
down_revision = "s0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_security_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("actor_type", sa.String(32), nullable=False),
        sa.Column("actor_id", sa.String(64)),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("object_type", sa.String(100), nullable=False),
        sa.Column("object_id", sa.String(64)),
        sa.Column("changes", pg.JSONB(), nullable=False, server_default="{}"),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_agent", sa.String(300)),
        sa.Column("request_id", sa.String(64)),
        schema="shared",
    )
    op.create_index(
        "ix_platform_security_log_occurred_at", "platform_security_log", ["occurred_at"], schema="shared"
    )
    op.execute(
        """
        CREATE FUNCTION shared.security_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the security log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER platform_security_log_no_update_or_delete BEFORE UPDATE OR DELETE "
        "ON shared.platform_security_log FOR EACH ROW EXECUTE FUNCTION shared.security_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER platform_security_log_no_truncate BEFORE TRUNCATE ON shared.platform_security_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION shared.security_log_append_only()"
    )


def downgrade() -> None:
    op.drop_table("platform_security_log", schema="shared")
    op.execute("DROP FUNCTION shared.security_log_append_only()")
