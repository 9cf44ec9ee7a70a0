"""The scanners' API: pairing, an event's offline bundle, online check-in and offline sync.

A device authenticates with ``Authorization: Device <token>`` (from pairing); a member signed in
with ``scanner.scan`` may use the same endpoints, for every event and gate. A scan is answered 200
with its ``result`` whatever the code was (garbage included): that is the door's answer. Only a
request the server cannot take (a malformed body, an unknown gate, a gate outside the device's
scope) is an error.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask import Flask, Response, g
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.auth import throttle
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from plugins.scanner import devices, offline, online
from plugins.scanner.admission import Scan
from plugins.scanner.api_staff import DeviceSchema, GateSchema, device_view
from plugins.scanner.bundle import bundle
from plugins.scanner.devices import current_scanner, require_scanner
from plugins.scanner.models import DIRECTIONS, IN, Gate
from plugins.scanner.rate_limit import RETRY_AFTER_KEY, spend
from plugins.scanner.reading import RESULTS
from plugins.scanner.ticket_codes import MAX_CODE_LENGTH
from plugins.ticketing import schemas
from plugins.ticketing.api_events import event_or_404

# What fits the API's body limit (1 MiB) with room to spare: about 450 bytes a scan.
MAX_BATCH = 2000
NONCE = validate.Regexp(r"^[A-Za-z0-9_-]{8,64}$", error="8 to 64 letters, digits, '-' or '_'.")
# Longer than any code, so that an oversized one is answered as a scan ("unknown"), not refused as a body.
MAX_SCANNED_TEXT = 4 * MAX_CODE_LENGTH

blueprint = Blueprint(
    "scanner_device", __name__, url_prefix="/scanner",
    description="For scanners: pairing, offline bundles, check-in and offline sync.",
)


PAIR_ENDPOINT = "scanner_device.pair"


def configure(app: Flask) -> None:
    """Limit pairing attempts per address like sign-ins (a pairing code is guessed like a password),
    and describe the device token in the OpenAPI document."""
    limiter = next(iter(app.extensions["limiter"]))  # the kernel's, the only one
    throttle.limit_endpoint(app, limiter, PAIR_ENDPOINT, kernel(app).settings.throttle.sign_in_per_ip)
    api = app.extensions["flask-smorest"]["blp_name_to_api"][blueprint.name]
    api.spec.components.security_scheme(devices.DEVICE_SECURITY, {
        "type": "apiKey", "in": "header", "name": "Authorization",
        "description": "`Device <token>`, the token from `POST /api/v1/scanner/pair`. An unpaired device's "
        "token is answered 401 `device_revoked`.",
    })


@blueprint.after_request
def announce_retry(response: Response) -> Response:
    seconds = g.pop(RETRY_AFTER_KEY, None)
    if seconds:
        response.headers["Retry-After"] = str(seconds)
    return response


class PairSchema(schemas.Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=devices.PAIRING_CODE_MAX))


class PairedSchema(Schema):
    device_token = fields.String(required=True, metadata={"description": "Send as `Authorization: Device <token>`"})
    device = fields.Nested(DeviceSchema, required=True)


class ScanFields(schemas.Schema):
    nonce = fields.String(required=True, validate=NONCE,
                          metadata={"description": "Chosen by the device, new for every scan; a retry repeats it"})
    code = fields.String(required=True, validate=validate.Length(max=MAX_SCANNED_TEXT),
                         metadata={"description": "What the scanner read, as it read it"})
    gate_id = fields.UUID(required=True)
    scanned_at = fields.AwareDateTime(required=True, metadata={"description": "The device's clock"})
    direction = fields.String(load_default=IN, validate=validate.OneOf(DIRECTIONS))


class OfflineScanSchema(ScanFields):
    local_result = fields.String(required=True, validate=validate.OneOf(RESULTS),
                                 metadata={"description": "What the device answered at the door"})


class SyncSchema(schemas.Schema):
    device_id = fields.UUID(allow_none=True, load_default=None,
                            metadata={"description": "The paired device's id; absent for a signed-in member"})
    check_ins = fields.List(fields.Nested(OfflineScanSchema), required=True,
                            metadata={"description": f"At most {MAX_BATCH} scans; more is a 413"})


class TicketViewSchema(Schema):
    id = fields.String(required=True)
    attendee_name = fields.String(allow_none=True)
    ticket_type = fields.String(required=True)
    note = fields.String(allow_none=True)


class PreviousSchema(Schema):
    at = fields.String(required=True)
    gate_id = fields.String(allow_none=True)
    gate = fields.String(allow_none=True)


class AnswerSchema(Schema):
    nonce = fields.String(required=True)
    result = fields.String(required=True, metadata={"description": " | ".join(RESULTS)})
    reason = fields.String(allow_none=True)
    ticket = fields.Nested(TicketViewSchema, allow_none=True)
    previous = fields.Nested(PreviousSchema, allow_none=True)
    scanned_at = fields.String(required=True)
    server_time = fields.String(required=True)
    replayed = fields.Boolean(required=True, metadata={"description": "The answer first given to this nonce"})


class ConflictSchema(Schema):
    nonce = fields.String(required=True)
    ticket_id = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    previous = fields.Nested(PreviousSchema, allow_none=True)


class BundleTicketTypeSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)


class BundleEventSchema(Schema):
    id = fields.String(required=True)
    title = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    timezone = fields.String(required=True)
    status = fields.String(required=True)
    ticket_types = fields.List(fields.Nested(BundleTicketTypeSchema), required=True)


class BundleAttendeeSchema(Schema):
    ticket_id = fields.String(required=True)
    attendee_name = fields.String(allow_none=True)
    ticket_type = fields.String(required=True)
    note = fields.String(allow_none=True)


class BundleSchema(Schema):
    event = fields.Nested(BundleEventSchema, required=True)
    gates = fields.List(fields.Nested(GateSchema), required=True)
    public_keys = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                              metadata={"description": "Ed25519 public keys, raw 32 bytes in base64url, by key id"})
    revoked = fields.List(fields.String(), required=True, metadata={"description": "Ticket ids not to let in"})
    attendees = fields.List(fields.Nested(BundleAttendeeSchema), allow_none=True,
                            metadata={"description": "Null unless the organisation allows offline attendee lists"})
    generated_at = fields.DateTime(required=True)


class SyncReportSchema(Schema):
    accepted = fields.Integer(required=True)
    duplicates = fields.Integer(required=True)
    conflicts = fields.List(fields.Nested(ConflictSchema), required=True)


def _gate_for_scanning(gate_id: UUID) -> Gate:
    gate = db.session.get(Gate, str(gate_id))
    if gate is None:
        raise ApiError(404, "gate_not_found", _("There is no such gate."), {"gate_id": str(gate_id)})
    if not current_scanner().may_use_gate(gate):
        raise ApiError(403, "gate_out_of_scope", _("This scanner is not paired for this gate."),
                       {"gate_id": str(gate_id)})
    return gate


@blueprint.route("/pair", methods=["POST"])
@blueprint.arguments(PairSchema)
@blueprint.response(201, PairedSchema)
@blueprint.alt_response(400, schema="Error", description="An unknown, used or expired code (`invalid_pairing_code`)")
@blueprint.alt_response(429, schema="Error", description="Too many attempts from this address")
def pair(data: dict[str, Any]) -> Any:
    """Pair this device with a one-time code from the organiser; no sign-in needed. The token is shown once."""
    device, token = devices.pair(data["code"])
    db.session.commit()
    return {"device_token": token, "device": device_view(device)}


@blueprint.route("/events/<uuid:event_id>/bundle")
@require_scanner
@blueprint.response(200, BundleSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
def event_bundle(event_id: UUID) -> Any:
    """The event, its gates, its public keys (base64url by key id), revoked ticket ids, and attendees
    (null unless the organisation allows offline attendee lists)."""
    scanner = current_scanner()
    if not scanner.may_scan_event(str(event_id)):
        raise ApiError(403, "event_out_of_scope", _("This scanner is not paired for this event."),
                       {"event_id": str(event_id)})
    event = event_or_404(event_id)
    gate_ids = [str(gate_id) for gate_id in scanner.device.gate_ids] if scanner.device else []
    answer = bundle(event, gate_ids)
    db.session.commit()
    return answer


@blueprint.route("/check-ins", methods=["POST"])
@require_scanner
@blueprint.arguments(ScanFields)
@blueprint.response(200, AnswerSchema)
@blueprint.alt_response(404, schema="Error", description="No such gate")
@blueprint.alt_response(409, schema="Error", description="The nonce was used for another scan (`nonce_reused`)")
@blueprint.alt_response(429, schema="Error", description="Too many scans from this device (`too_many_scans`)")
def check_in(data: dict[str, Any]) -> Any:
    """Check a ticket in (or out) online: exactly one of simultaneous scans of a ticket is ``admitted``."""
    scanner = current_scanner()
    spend(scanner)
    gate = _gate_for_scanning(data["gate_id"])
    scan = Scan(data["nonce"], data["code"], str(gate.id), data["direction"], data["scanned_at"])
    return online.check_in(scanner, gate, scan)


@blueprint.route("/sync", methods=["POST"])
@require_scanner
@blueprint.arguments(SyncSchema)
@blueprint.response(200, SyncReportSchema)
@blueprint.alt_response(403, schema="Error", description="``device_id`` is not the authenticated device")
@blueprint.alt_response(413, schema="Error", description=f"More than {MAX_BATCH} scans (`batch_too_large`)")
def sync(data: dict[str, Any]) -> Any:
    """Upload scans made offline; each nonce counts once, so uploading a batch again adds nothing."""
    scanner = current_scanner()
    own_id = str(scanner.device.id) if scanner.device else None
    sent_id = str(data["device_id"]) if data["device_id"] else None
    if sent_id != own_id:
        raise ApiError(403, "wrong_device", _("These scans must be uploaded by the device that made them."),
                       {"device_id": sent_id})
    if len(data["check_ins"]) > MAX_BATCH:
        raise ApiError(413, "batch_too_large",
                       _("Upload at most %(max)d scans at a time.", max=MAX_BATCH), {"max": MAX_BATCH})
    spend(scanner)
    scans = [
        offline.OfflineScan(
            Scan(item["nonce"], item["code"], str(item["gate_id"]), item["direction"], item["scanned_at"]),
            item["local_result"],
        )
        for item in data["check_ins"]
    ]
    report = offline.sync(scanner, scans)
    return {"accepted": report.accepted, "duplicates": report.duplicates, "conflicts": report.conflicts}
