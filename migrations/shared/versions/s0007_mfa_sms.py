"""The SMS second factor (a phone number per account, hashed one-time codes), device details, recovery links.

An account may now have SMS without TOTP, so the TOTP secret becomes optional; ``confirmed_at``
stays the TOTP enrolment's confirmation and ``phone_confirmed_at`` is the phone's.

Revision ID: s0007
"""

import sqlalchemy as sa
from alembic import op

revision = "s0007"
down_revision = "s0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A mailed link that turns MFA off for someone who lost their device.
    op.drop_constraint("ck_account_tokens_purpose", "account_tokens", schema="shared")
    op.create_check_constraint(
        "ck_account_tokens_purpose", "account_tokens",
        "purpose IN ('verify_email', 'reset_password', 'mfa_recovery')", schema="shared",
    )
    op.alter_column("account_mfa", "totp_secret_sealed", nullable=True, schema="shared")
    op.add_column("account_mfa", sa.Column("phone_e164", sa.String(16)), schema="shared")
    # NULL while the number awaits its confirming code.
    op.add_column("account_mfa", sa.Column("phone_confirmed_at", sa.DateTime(timezone=True)), schema="shared")
    op.add_column("mfa_remembered_devices", sa.Column("user_agent", sa.String(255)), schema="shared")
    op.add_column("mfa_remembered_devices", sa.Column("last_used_at", sa.DateTime(timezone=True)), schema="shared")
    op.create_table(
        "mfa_sms_codes",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("account_id", sa.Uuid(), sa.ForeignKey("shared.accounts.id", ondelete="CASCADE"), nullable=False),
        # "enrol" (confirms a number) or "sign_in".
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("phone_e164", sa.String(16), nullable=False),
        # HMAC-SHA256 under a key derived from SECRET_KEY: six digits alone are quickly guessed from a hash.
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema="shared",
    )
    op.create_index(
        "ix_mfa_sms_codes_account_id_created_at", "mfa_sms_codes", ["account_id", "created_at"], schema="shared"
    )


def downgrade() -> None:
    op.drop_table("mfa_sms_codes", schema="shared")
    op.drop_column("mfa_remembered_devices", "last_used_at", schema="shared")
    op.drop_column("mfa_remembered_devices", "user_agent", schema="shared")
    op.drop_column("account_mfa", "phone_confirmed_at", schema="shared")
    op.drop_column("account_mfa", "phone_e164", schema="shared")
    # Rows of SMS-only accounts have no TOTP secret and cannot survive the constraint.
    op.execute("DELETE FROM shared.account_mfa WHERE totp_secret_sealed IS NULL")
    op.alter_column("account_mfa", "totp_secret_sealed", nullable=False, schema="shared")
    op.execute("DELETE FROM shared.account_tokens WHERE purpose = 'mfa_recovery'")
    op.drop_constraint("ck_account_tokens_purpose", "account_tokens", schema="shared")
    op.create_check_constraint(
        "ck_account_tokens_purpose", "account_tokens", "purpose IN ('verify_email', 'reset_password')", schema="shared"
    )
