"""``GET /api/v1/scanner/events/<id>/live``: the live view's figures as JSON (``scanner.manage``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.auth.authorize import require_permission
from plugins.scanner.clock import db_now
from plugins.scanner.live import live_figures
from plugins.scanner.plugin import MANAGE
from plugins.ticketing.api_events import event_or_404

blueprint = Blueprint(
    "scanner_live_api", __name__, url_prefix="/scanner",
    description="An event's door as it happens: arrivals, check-ins against sales, conflicts, suspicious scans.",
)


class LiveSlotSchema(Schema):
    starts_at = fields.DateTime(required=True, metadata={"description": "Start of the 15-minute slot (UTC)"})
    arrivals = fields.Integer(required=True)


class LiveGateFiguresSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    arrivals = fields.Integer(required=True, metadata={"description": "Admissions, re-entries included"})
    tickets = fields.Integer(required=True, metadata={"description": "Distinct tickets admitted"})


class LiveTypeFiguresSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    sold = fields.Integer(required=True)
    checked_in = fields.Integer(required=True)


class LiveConflictSchema(Schema):
    check_in_id = fields.Integer(required=True)
    ticket_id = fields.String(required=True)
    at = fields.DateTime(required=True)
    gate = fields.String(required=True)
    device = fields.String(allow_none=True)
    reason = fields.String(required=True, metadata={"description": "already_used, admitted_again, revoked..."})


class LiveTwoGatesSchema(Schema):
    ticket_id = fields.String(required=True)
    first_at = fields.DateTime(required=True)
    first_gate = fields.String(required=True)
    second_at = fields.DateTime(required=True)
    second_gate = fields.String(required=True)


class LiveBurstSchema(Schema):
    device_id = fields.String(required=True)
    device = fields.String(required=True)
    starts_at = fields.DateTime(required=True)
    bad_codes = fields.Integer(required=True)


class LiveSchema(Schema):
    event_id = fields.String(required=True)
    started = fields.Boolean(required=True)
    sold = fields.Integer(required=True)
    checked_in = fields.Integer(required=True)
    inside = fields.Integer(required=True)
    arrivals = fields.Integer(required=True)
    no_shows = fields.Integer(allow_none=True, metadata={"description": "null before the event starts"})
    slots = fields.List(fields.Nested(LiveSlotSchema), required=True)
    gates = fields.List(fields.Nested(LiveGateFiguresSchema), required=True)
    ticket_types = fields.List(fields.Nested(LiveTypeFiguresSchema), required=True)
    conflict_count = fields.Integer(required=True)
    conflicts = fields.List(fields.Nested(LiveConflictSchema), required=True, metadata={"description": "Latest 100"})
    two_gates = fields.List(fields.Nested(LiveTwoGatesSchema), required=True,
                            metadata={"description": "One ticket scanned at two gates within 60 seconds"})
    bursts = fields.List(fields.Nested(LiveBurstSchema), required=True,
                         metadata={"description": "Devices that read 5 forged or unreadable codes within a minute"})


@blueprint.route("/events/<uuid:event_id>/live")
@require_permission(MANAGE)
@blueprint.response(200, LiveSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
def live(event_id: UUID) -> Any:
    """The event's door now: the same figures as the live view at ``/manage/scanner/events/<id>/live``."""
    return live_figures(event_or_404(event_id), db_now())
