"""Two-factor sign-in: each account's TOTP enrolment and backup codes, and remembered devices.

Revision ID: s0004
"""
import sqlalchemy as sa
from alembic import op

revision = "s0004"
down_revision = "s0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "account_mfa",
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), primary_key=True
        ),
        # AES-GCM under a key derived from SECRET_KEY; never stored in the clear.
        sa.Column("totp_secret_sealed", sa.Text(), nullable=False),
        # NULL while enrolment awaits its confirming code: the factor is not in force yet.
        sa.Column("confirmed_at", sa.DateTime(timezone=True)),
        sa.Column("backup_code_hashes", sa.ARRAY(sa.Text()), nullable=False, server_default="{}"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema="shared",
    )
    op.create_table(
        "mfa_remembered_devices",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column(
            "account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("token_hash", name="uq_mfa_remembered_devices_token_hash"),
        schema="shared",
    )
    op.create_index(
        "ix_mfa_remembered_devices_account_id", "mfa_remembered_devices", ["account_id"], schema="shared"
    )


def downgrade() -> None:
    op.drop_table("mfa_remembered_devices", schema="shared")
    op.drop_table("account_mfa", schema="shared")
