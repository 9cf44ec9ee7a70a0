"""The staff API on refunding a cancelled event's orders: its progress, and running it again.

``GET /api/v1/events/<id>/cancellation`` needs ``orders.view``; running the refunds again (after a
payment provider refused some) needs ``events.publish``, like cancelling the event.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.ticketing import event_cancellation
from plugins.ticketing.api_events import event_or_404
from plugins.ticketing.event_cancellation import EventCancellation
from plugins.ticketing.plugin import EVENTS_PUBLISH, ORDERS_VIEW

blueprint = Blueprint(
    "ticketing_event_cancellation", __name__, url_prefix="/events",
    description="Refunding every order of a cancelled event: progress and reruns.",
)


class FailureSchema(Schema):
    order_id = fields.String(required=True)
    code = fields.String(required=True, metadata={"description": "The order's code"})
    error = fields.String(required=True, metadata={"description": "The error code the refund or cancel met"})
    message = fields.String(required=True)


class CancellationSchema(Schema):
    event_id = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "queued, running or finished"})
    total = fields.Integer(required=True, metadata={"description": "Orders to refund or cancel"})
    done = fields.Integer(required=True, metadata={"description": "Orders refunded or cancelled"})
    failed = fields.Integer(required=True, metadata={"description": "Orders whose refund failed in the last run"})
    refunded_minor = fields.Integer(
        required=True, metadata={"description": "Paid back (or pending at the provider) so far, in minor units"}
    )
    failures = fields.List(fields.Nested(FailureSchema), required=True)
    runs = fields.Integer(required=True)
    started_at = fields.DateTime(required=True)
    finished_at = fields.DateTime(allow_none=True)


def _progress(event_id: UUID) -> EventCancellation:
    event = event_or_404(event_id)
    progress = event_cancellation.progress_of(event.id)
    if progress is None:
        raise ApiError(404, "not_cancelled", _("This event was not cancelled."), {"event_id": event.id})
    return progress


@blueprint.route("/<uuid:event_id>/cancellation")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, CancellationSchema)
@blueprint.alt_response(404, schema=None, description="No such event, or it was not cancelled")
def get_cancellation(event_id: UUID) -> EventCancellation:
    """How far refunding the cancelled event's orders has come, with the orders that failed."""
    return _progress(event_id)


@blueprint.route("/<uuid:event_id>/cancellation/rerun", methods=["POST"])
@require_permission(EVENTS_PUBLISH)
@blueprint.response(202, CancellationSchema)
@blueprint.alt_response(404, schema=None, description="No such event, or it was not cancelled")
def rerun_cancellation(event_id: UUID) -> Any:
    """Run the refunds again: orders still open (those that failed) are retried; none is refunded twice."""
    event = event_or_404(event_id)
    progress = _progress(event_id)
    event_cancellation.start_refunds(event)
    db.session.commit()
    return progress
