"""The organiser's scanner API: pairing codes, paired devices, and each event's gates.

Everything here needs ``scanner.manage`` in the tenant being served.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from plugins.scanner import devices
from plugins.scanner import gates as gate_service
from plugins.scanner.bundle import gate_view
from plugins.scanner.models import ENTRY_MODES
from plugins.scanner.plugin import MANAGE
from plugins.ticketing import schemas
from plugins.ticketing.api_events import event_or_404

MAX_SCOPE = 200

blueprint = Blueprint(
    "scanner_staff", __name__, url_prefix="/scanner",
    description="Pair scanners with one-time codes, list them, and unpair them.",
)
gates_blueprint = Blueprint(
    "scanner_gates", __name__, url_prefix="/events",
    description="An event's gates (check-in lists): which tickets each admits, when, and how often.",
)


class PairingRequestSchema(schemas.Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "What the device is called, e.g. 'North door, phone 2'"})
    event_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=MAX_SCOPE))
    gate_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=MAX_SCOPE),
                           metadata={"description": "Only these gates; empty: every gate of those events"})


class PairingCodeSchema(Schema):
    code = fields.String(required=True, metadata={"description": "Shown once; pairs one device"})
    expires_at = fields.DateTime(required=True)
    name = fields.String(required=True)
    event_ids = fields.List(fields.String(), required=True)
    gate_ids = fields.List(fields.String(), required=True)


class DeviceSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    event_ids = fields.List(fields.String(), required=True)
    gate_ids = fields.List(fields.String(), required=True)
    paired_at = fields.DateTime(required=True)
    last_seen_at = fields.DateTime(allow_none=True)
    revoked_at = fields.DateTime(allow_none=True)


class GateSchema(schemas.Schema):
    id = fields.String(dump_only=True)
    event_id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    ticket_type_ids = fields.List(fields.UUID(), load_default=list, validate=validate.Length(max=MAX_SCOPE),
                                  metadata={"description": "Ticket types it admits; empty: all of the event's"})
    opens_at = fields.AwareDateTime(allow_none=True, load_default=None)
    closes_at = fields.AwareDateTime(allow_none=True, load_default=None)
    entry_mode = fields.String(load_default="single", validate=validate.OneOf(ENTRY_MODES),
                               metadata={"description": "single: in once until scanned out; multiple: any number"})
    exits_allowed = fields.Boolean(load_default=False, metadata={"description": "Whether it takes exit scans"})


class GatePatchSchema(GateSchema):
    """Every field optional: only those sent change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)


def device_view(device: Any) -> dict[str, Any]:
    return {
        "id": str(device.id), "name": device.name, "event_ids": [str(e) for e in device.event_ids],
        "gate_ids": [str(g) for g in device.gate_ids], "paired_at": device.paired_at,
        "last_seen_at": device.last_seen_at, "revoked_at": device.revoked_at,
    }


@blueprint.route("/pairing-codes", methods=["POST"])
@require_permission(MANAGE)
@blueprint.arguments(PairingRequestSchema)
@blueprint.response(201, PairingCodeSchema)
@blueprint.alt_response(422, schema="Error", description="An event or gate that is not this organisation's")
def create_pairing_code(data: dict[str, Any]) -> Any:
    """A one-time code (valid for 10 minutes) that pairs one device with these events and gates."""
    pairing, code = devices.create_pairing_code(data["name"], data["event_ids"], data["gate_ids"])
    db.session.commit()
    return {"code": code, "expires_at": pairing.expires_at, "name": pairing.name,
            "event_ids": pairing.event_ids, "gate_ids": pairing.gate_ids}


@blueprint.route("/devices")
@require_permission(MANAGE)
@blueprint.response(200, DeviceSchema(many=True))
def list_devices() -> Any:
    """Paired devices, newest first, unpaired ones included."""
    return [device_view(device) for device in devices.list_devices()]


@blueprint.route("/devices/<uuid:device_id>")
@require_permission(MANAGE)
@blueprint.response(200, DeviceSchema)
@blueprint.alt_response(404, schema="Error", description="No such device")
def get_device(device_id: UUID) -> Any:
    return device_view(devices.device_or_404(device_id))


@blueprint.route("/devices/<uuid:device_id>", methods=["DELETE"])
@require_permission(MANAGE)
@blueprint.response(200, DeviceSchema)
@blueprint.alt_response(404, schema="Error", description="No such device")
def revoke_device(device_id: UUID) -> Any:
    """Unpair a device: its token stops working at once (401 ``device_revoked``)."""
    device = devices.device_or_404(device_id)
    devices.revoke(device)
    db.session.commit()
    return device_view(device)


@gates_blueprint.route("/<uuid:event_id>/gates")
@require_permission(MANAGE)
@gates_blueprint.response(200, GateSchema(many=True))
@gates_blueprint.alt_response(404, schema="Error", description="No such event")
def list_gates(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    return [gate_view(gate) for gate in gate_service.gates_of(event.id)]


@gates_blueprint.route("/<uuid:event_id>/gates", methods=["POST"])
@require_permission(MANAGE)
@gates_blueprint.arguments(GateSchema)
@gates_blueprint.response(201, GateSchema)
@gates_blueprint.alt_response(404, schema="Error", description="No such event")
@gates_blueprint.alt_response(409, schema="Error", description="The event has a gate of that name")
def create_gate(data: dict[str, Any], event_id: UUID) -> Any:
    event = event_or_404(event_id)
    return gate_view(gate_service.save_gate(event, data))


@gates_blueprint.route("/<uuid:event_id>/gates/<uuid:gate_id>", methods=["PATCH"])
@require_permission(MANAGE)
@gates_blueprint.arguments(GatePatchSchema)
@gates_blueprint.response(200, GateSchema)
@gates_blueprint.alt_response(404, schema="Error", description="No such event or gate")
@gates_blueprint.alt_response(409, schema="Error", description="The event has a gate of that name")
def change_gate(data: dict[str, Any], event_id: UUID, gate_id: UUID) -> Any:
    event = event_or_404(event_id)
    gate = gate_service.gate_or_404(event.id, gate_id)
    return gate_view(gate_service.save_gate(event, data, gate))
