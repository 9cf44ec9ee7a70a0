"""Paired devices: one-time pairing codes, device tokens, revocation, and who is scanning.

A member with ``scanner.manage`` makes a pairing code for a device name and the events (and
optionally gates) it may scan; the code is shown once, lives :data:`PAIRING_LIFETIME`, and pairs
one device. Pairing hands the device a token, sent as ``Authorization: Device <token>``; only its
SHA-256 is stored. A member signed in with ``scanner.scan`` may scan too, at every gate.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import current_app, g, request
from flask_babel import gettext as _
from flask_smorest import Blueprint as ApiBlueprint

from bilten_core import audit
from bilten_core.api import BEARER_SECURITY
from bilten_core.auth.authorize import has_permission
from bilten_core.auth.identity import current_identity
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.tenancy.context import current_tenant
from plugins.scanner.clock import db_now
from plugins.scanner.models import Device, Gate, PairingCode
from plugins.scanner.plugin import SCAN
from plugins.ticketing.models import Event

DEVICE_SCHEME = "device"
DEVICE_SECURITY = "deviceAuth"
PAIRING_LIFETIME = timedelta(minutes=10)
# Unambiguous when read aloud or typed from a screen; 12 characters are about 59 bits.
PAIRING_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
PAIRING_CODE_LENGTH = 12
PAIRING_CODE_MAX = 40
DEVICE_TOKEN_MAX = 200
# last_seen_at is written at most this often per device: a busy gate should not rewrite it per scan.
LAST_SEEN_GRANULARITY = timedelta(seconds=30)

F = TypeVar("F", bound=Callable[..., Any])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def normalise_pairing_code(code: str) -> str:
    """Upper case without spaces or dashes: a code reads ``K7M2-QX9P-3ABC`` but may be typed any way."""
    return "".join(code.split()).replace("-", "").upper()


def _scope(event_ids: Iterable[Any], gate_ids: Iterable[Any]) -> tuple[list[str], list[str]]:
    """The events and gates named, checked to exist here and to belong together; a 422 otherwise."""
    events = sorted({str(event_id) for event_id in event_ids})
    gates = sorted({str(gate_id) for gate_id in gate_ids})
    found = set(db.session.scalars(sa.select(Event.id).where(Event.id.in_(events)))) if events else set()
    missing = [event_id for event_id in events if event_id not in found]
    if not events or missing:
        raise ApiError(
            422, "unknown_event", _("Choose at least one event of this organisation."), {"event_ids": missing}
        )
    gate_events = {
        str(gate_id): event_id
        for gate_id, event_id in db.session.execute(sa.select(Gate.id, Gate.event_id).where(Gate.id.in_(gates)))
    }
    stray = [gate_id for gate_id in gates if str(gate_events.get(gate_id)) not in found]
    if stray:
        raise ApiError(
            422, "unknown_gate", _("Every gate must belong to one of the chosen events."), {"gate_ids": stray}
        )
    return events, gates


def create_pairing_code(name: str, event_ids: Iterable[Any], gate_ids: Iterable[Any]) -> tuple[PairingCode, str]:
    """A new pairing code and its text, which is never stored; the caller commits."""
    events, gates = _scope(event_ids, gate_ids)
    text = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(PAIRING_CODE_LENGTH))
    identity = current_identity()
    pairing = PairingCode(
        id=str(uuid.uuid4()), code_hash=_digest(text), name=name, event_ids=events, gate_ids=gates,
        created_by=identity.account_id if identity else None, expires_at=db_now() + PAIRING_LIFETIME,
    )
    db.session.add(pairing)
    audit.record("scanner.pairing_code_created", "scanner_pairing_code", pairing.id,
                 {"name": name, "event_ids": events, "gate_ids": gates})
    return pairing, "-".join(text[i:i + 4] for i in range(0, PAIRING_CODE_LENGTH, 4))


def pair(code: str) -> tuple[Device, str]:
    """Use a pairing code once: a new device and its token. One answer for unknown, used or expired codes."""
    pairing = db.session.scalar(
        sa.select(PairingCode)
        .where(PairingCode.code_hash == _digest(normalise_pairing_code(code)))
        .with_for_update()
    )
    now = db_now()
    if pairing is None or pairing.used_at is not None or pairing.expires_at <= now:
        raise ApiError(
            400, "invalid_pairing_code",
            _("This pairing code is not valid: it may have expired or been used. Ask for a new one."),
        )
    token = "dev_" + secrets.token_urlsafe(32)
    device = Device(
        id=str(uuid.uuid4()), name=pairing.name, token_hash=_digest(token), event_ids=list(pairing.event_ids),
        gate_ids=list(pairing.gate_ids), created_by=pairing.created_by, paired_at=now, last_seen_at=now,
    )
    db.session.add(device)
    db.session.flush()
    pairing.used_at = now
    pairing.device_id = device.id
    audit.record("scanner.device_paired", "scanner_device", device.id,
                 {"name": device.name, "event_ids": device.event_ids, "gate_ids": device.gate_ids},
                 actor=audit.Actor("device", device.id))
    return device, token


def device_or_404(device_id: Any) -> Device:
    device = db.session.get(Device, str(device_id))
    if device is None:
        raise ApiError(404, "device_not_found", _("There is no such device."), {"device_id": str(device_id)})
    return device


def list_devices() -> list[Device]:
    return list(db.session.scalars(sa.select(Device).order_by(Device.paired_at.desc(), Device.id)))


def revoke(device: Device) -> None:
    """Stop ``device`` from scanning, at once; revoking twice changes nothing. The caller commits."""
    if device.revoked_at is not None:
        return
    device.revoked_at = db_now()
    audit.record("scanner.device_revoked", "scanner_device", device.id, {"name": device.name})


# --- Who is scanning ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scanner:
    """A paired device, or a member with ``scanner.scan`` (who may scan at every gate)."""

    device: Device | None
    account_id: str | None

    @property
    def actor(self) -> audit.Actor:
        if self.device is not None:
            return audit.Actor("device", self.device.id)
        return audit.Actor("user", self.account_id)

    def may_scan_event(self, event_id: str) -> bool:
        return self.device is None or str(event_id) in {str(e) for e in self.device.event_ids}

    def may_use_gate(self, gate: Gate) -> bool:
        if self.device is None:
            return True
        gates = {str(gate_id) for gate_id in self.device.gate_ids}
        return self.may_scan_event(gate.event_id) and (not gates or str(gate.id) in gates)


def _device_token() -> str | None:
    scheme, _space, token = request.headers.get("Authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == DEVICE_SCHEME else None


def _authenticate() -> Scanner:
    token = _device_token()
    if token is not None:
        device = None
        if 0 < len(token) <= DEVICE_TOKEN_MAX:
            device = db.session.scalar(sa.select(Device).where(Device.token_hash == _digest(token)))
        if device is None:
            raise ApiError(401, "invalid_device_token", _("This device is not paired here. Pair it again."))
        if device.revoked_at is not None:
            audit.record("scanner.revoked_device_refused", "scanner_device", device.id, {},
                         actor=audit.Actor("device", device.id))
            db.session.commit()
            raise ApiError(401, "device_revoked", _("This device was unpaired. Ask for a new pairing code."))
        _touch(device)
        return Scanner(device, None)
    identity = current_identity()
    if identity is None:
        raise ApiError(401, "authentication_required", _("Pair this device or sign in to scan tickets."))
    if not has_permission(identity, SCAN, current_tenant()):
        raise ApiError(403, "permission_denied", _("You do not have permission to do this here."),
                       {"permission": SCAN})
    return Scanner(None, identity.account_id)


def _touch(device: Device) -> None:
    now = db_now()
    if device.last_seen_at is None or now - device.last_seen_at >= LAST_SEEN_GRANULARITY:
        device.last_seen_at = now


def current_scanner() -> Scanner:
    scanner: Scanner = g.scanner
    return scanner


def require_scanner(view: F) -> F:
    """Let the view run for a paired device or a member with ``scanner.scan``; put it right under the route."""

    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        g.scanner = _authenticate()
        with audit.acting_as(g.scanner.actor):
            return current_app.ensure_sync(view)(*args, **kwargs)

    documented = ApiBlueprint.doc(
        responses={
            401: {"description": "No device token or sign-in, or the device was unpaired (`device_revoked`)"},
            403: {"description": f"A member without `{SCAN}`, or a gate or event outside the device's scope"},
        },
        security=[{DEVICE_SECURITY: []}, {BEARER_SECURITY: []}],
    )(guarded)
    return documented  # type: ignore[no-any-return]
