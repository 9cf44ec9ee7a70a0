"""Scanner: event key rings, revocations, devices and pairing codes, gates, per-ticket door state,
check-ins and the scan log.

Revision ID: sc0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "sc0001"
down_revision = None
branch_labels = ("scanner",)
depends_on = "tk0005"

_NOW = sa.func.now()


def _uuids(name: str) -> sa.Column:
    return sa.Column(name, pg.ARRAY(sa.Uuid()), nullable=False, server_default="{}")


def upgrade() -> None:
    # No foreign key to events: a ring is created on its own short transaction (see keys.py), which
    # must not wait for a lock the caller's transaction may hold on the event.
    op.create_table(
        "scanner_key_rings",
        sa.Column("event_id", sa.Uuid(), primary_key=True),
        sa.Column("ring", pg.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_table(
        "scanner_revocations",
        sa.Column("ticket_id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_index("ix_scanner_revocations_event_id", "scanner_revocations", ["event_id"])
    op.create_table(
        "scanner_devices",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        _uuids("event_ids"),
        _uuids("gate_ids"),
        sa.Column("created_by", sa.String(64)),
        sa.Column("paired_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_seen_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "scanner_pairing_codes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        _uuids("event_ids"),
        _uuids("gate_ids"),
        sa.Column("created_by", sa.String(64)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("device_id", sa.Uuid(), sa.ForeignKey("scanner_devices.id", ondelete="SET NULL")),
    )
    op.create_table(
        "scanner_gates",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("event_id", sa.Uuid(), sa.ForeignKey("events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        _uuids("ticket_type_ids"),
        sa.Column("opens_at", sa.DateTime(timezone=True)),
        sa.Column("closes_at", sa.DateTime(timezone=True)),
        sa.Column("entry_mode", sa.String(8), nullable=False, server_default="single"),
        sa.Column("exits_allowed", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.UniqueConstraint("event_id", "name", name="uq_scanner_gates_event_name"),
        sa.CheckConstraint("entry_mode IN ('single', 'multiple')", name="ck_scanner_gates_entry_mode"),
        sa.CheckConstraint(
            "opens_at IS NULL OR closes_at IS NULL OR opens_at < closes_at", name="ck_scanner_gates_window"
        ),
    )
    op.create_index("ix_scanner_gates_event_id", "scanner_gates", ["event_id"])
    op.create_table(
        "scanner_ticket_states",
        sa.Column("ticket_id", sa.Uuid(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("inside", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("entries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_in_at", sa.DateTime(timezone=True)),
        sa.Column("last_in_gate_id", sa.Uuid()),
        sa.Column("last_in_check_in_id", sa.BigInteger()),
        sa.Column("last_out_at", sa.DateTime(timezone=True)),
        sa.Column("flagged_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_scanner_ticket_states_event_id", "scanner_ticket_states", ["event_id"])
    op.create_table(
        "scanner_check_ins",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("ticket_id", sa.Uuid(), sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("gate_id", sa.Uuid(), sa.ForeignKey("scanner_gates.id", ondelete="CASCADE"), nullable=False),
        sa.Column("device_id", sa.Uuid(), sa.ForeignKey("scanner_devices.id", ondelete="SET NULL")),
        sa.Column("account_id", sa.String(64)),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("result", sa.String(24), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("conflict", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("conflict_reason", sa.String(40)),
        sa.CheckConstraint("direction IN ('in', 'out')", name="ck_scanner_check_ins_direction"),
    )
    op.create_index("ix_scanner_check_ins_ticket_id", "scanner_check_ins", ["ticket_id"])
    op.create_index("ix_scanner_check_ins_event_received", "scanner_check_ins", ["event_id", "received_at"])
    op.create_index(
        "ix_scanner_check_ins_conflicts", "scanner_check_ins", ["event_id"], postgresql_where=sa.text("conflict")
    )
    op.create_table(
        "scanner_scan_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("device_id", sa.Uuid()),
        sa.Column("account_id", sa.String(64)),
        sa.Column("event_id", sa.Uuid()),
        sa.Column("gate_id", sa.Uuid()),
        sa.Column("ticket_id", sa.Uuid()),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("result", sa.String(24), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("scanned_at", sa.DateTime(timezone=True)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("code_digest", sa.String(64), nullable=False),
        sa.Column("details", pg.JSONB(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_scanner_scan_log_event_received", "scanner_scan_log", ["event_id", "received_at"])


def downgrade() -> None:
    op.drop_table("scanner_scan_log")
    op.drop_table("scanner_check_ins")
    op.drop_table("scanner_ticket_states")
    op.drop_table("scanner_gates")
    op.drop_table("scanner_pairing_codes")
    op.drop_table("scanner_devices")
    op.drop_table("scanner_revocations")
    op.drop_table("scanner_key_rings")
