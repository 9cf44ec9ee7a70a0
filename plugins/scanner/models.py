"""The scanner plugin's tenant tables: key rings, revocations, devices, pairing codes, gates, per-ticket
door state, check-ins and the scan log. The migration is ``sc0001``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core.db import TenantModel

SINGLE_ENTRY = "single"
MULTIPLE_ENTRY = "multiple"
ENTRY_MODES = (SINGLE_ENTRY, MULTIPLE_ENTRY)
IN = "in"
OUT = "out"
DIRECTIONS = (IN, OUT)


class KeyRing(TenantModel):
    """One event's ticket-code keys, private keys sealed (``EventKeyRing.to_dict``)."""

    __tablename__ = "scanner_key_rings"

    event_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    ring: Mapped[dict[str, Any]] = mapped_column(pg.JSONB)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Revocation(TenantModel):
    """A ticket that no longer admits anyone, as ``ticketing.tickets_revoked`` announced it."""

    __tablename__ = "scanner_revocations"

    ticket_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), index=True)
    reason: Mapped[str] = mapped_column(sa.String(40))
    revoked_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())


class Device(TenantModel):
    """A paired scanner: a phone or a handheld that scans at the gates of the events it may see."""

    __tablename__ = "scanner_devices"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    event_ids: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Uuid(as_uuid=False)))
    # Empty: every gate of those events.
    gate_ids: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Uuid(as_uuid=False)))
    created_by: Mapped[str | None] = mapped_column(sa.String(64))
    paired_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class PairingCode(TenantModel):
    """A one-time code that pairs one device; only its hash is kept."""

    __tablename__ = "scanner_pairing_codes"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    event_ids: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Uuid(as_uuid=False)))
    gate_ids: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Uuid(as_uuid=False)))
    created_by: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    expires_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    device_id: Mapped[str | None] = mapped_column(sa.ForeignKey("scanner_devices.id", ondelete="SET NULL"))


class Gate(TenantModel):
    """A check-in list: where, when and which tickets of one event are let in (and out)."""

    __tablename__ = "scanner_gates"

    id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    # Empty: every ticket type of the event.
    ticket_type_ids: Mapped[list[str]] = mapped_column(pg.ARRAY(sa.Uuid(as_uuid=False)))
    opens_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    closes_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    entry_mode: Mapped[str] = mapped_column(sa.String(8), default=SINGLE_ENTRY)
    exits_allowed: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )


class TicketState(TenantModel):
    """Whether a ticket is inside: the row every admission of that ticket locks, so one wins."""

    __tablename__ = "scanner_ticket_states"

    ticket_id: Mapped[str] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False), index=True)
    inside: Mapped[bool] = mapped_column(default=False)
    entries: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_in_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    last_in_gate_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    last_in_check_in_id: Mapped[int | None] = mapped_column(sa.BigInteger)
    last_out_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    # Set when two admissions collided (offline devices): the ticket awaits review.
    flagged_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))


class CheckIn(TenantModel):
    """A scan of a genuine ticket of this tenant at one of its gates, online or synced later."""

    __tablename__ = "scanner_check_ins"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    ticket_id: Mapped[str] = mapped_column(sa.ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    event_id: Mapped[str] = mapped_column(sa.Uuid(as_uuid=False))
    gate_id: Mapped[str] = mapped_column(sa.ForeignKey("scanner_gates.id", ondelete="CASCADE"))
    device_id: Mapped[str | None] = mapped_column(sa.ForeignKey("scanner_devices.id", ondelete="SET NULL"))
    account_id: Mapped[str | None] = mapped_column(sa.String(64))
    direction: Mapped[str] = mapped_column(sa.String(3))
    result: Mapped[str] = mapped_column(sa.String(24))
    online: Mapped[bool] = mapped_column()
    # The device's clock; received_at is the server's.
    scanned_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    conflict: Mapped[bool] = mapped_column(default=False)
    conflict_reason: Mapped[str | None] = mapped_column(sa.String(40))


class ScanLogEntry(TenantModel):
    """Every scan a device or a member sent, refused ones included; its nonce is taken once."""

    __tablename__ = "scanner_scan_log"

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    nonce: Mapped[str] = mapped_column(sa.String(64), unique=True)
    device_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    account_id: Mapped[str | None] = mapped_column(sa.String(64))
    event_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    gate_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    # What the code claims, verified or not: never trusted for anything but looking back.
    ticket_id: Mapped[str | None] = mapped_column(sa.Uuid(as_uuid=False))
    direction: Mapped[str] = mapped_column(sa.String(3))
    result: Mapped[str] = mapped_column(sa.String(24))
    online: Mapped[bool] = mapped_column()
    scanned_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    # SHA-256 of the code as sent: enough to match repeats, and the log holds no code that admits.
    code_digest: Mapped[str] = mapped_column(sa.String(64))
    details: Mapped[dict[str, Any]] = mapped_column(pg.JSONB, default=dict)
