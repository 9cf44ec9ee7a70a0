"""Scanner: the scan log by device, for the live view's burst checks, which run on every unreadable code.

Revision ID: sc0002
"""

from alembic import op

revision = "sc0002"
down_revision = "sc0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_scanner_scan_log_event_device_received", "scanner_scan_log", ["event_id", "device_id", "received_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_scanner_scan_log_event_device_received", table_name="scanner_scan_log")
