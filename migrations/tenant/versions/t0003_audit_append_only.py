"""The audit log is append-only: the database refuses to change or delete its rows.

The application has no update or delete path for audit entries; this guard also holds against a
bug, a stray ``UPDATE`` in a console, or SQL injection elsewhere. Dropping a whole tenant schema
(``DROP SCHEMA ... CASCADE``) fires no row trigger and still works.

Revision ID: t0003
"""
from alembic import op

revision = "t0003"
down_revision = "t0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Unqualified: the migration runner points search_path at the tenant's schema.
    op.execute(
        """
        CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    op.execute("DROP TRIGGER audit_log_no_update_or_delete ON audit_log")
    op.execute("DROP FUNCTION audit_log_append_only()")
