"""The organiser's sales figures of one event: ``GET /api/v1/events/<id>/stats``.

Revenue and orders are order data, so the figures need ``orders.view`` (every built-in role that
may see events may see their orders too); the event itself must belong to the tenant being served.
"""

from __future__ import annotations

from uuid import UUID

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.auth.authorize import require_permission
from plugins.ticketing.api_events import event_or_404
from plugins.ticketing.event_stats import DAY, HOUR, EventStats, event_stats
from plugins.ticketing.plugin import ORDERS_VIEW

blueprint = Blueprint(
    "ticketing_event_stats", __name__, url_prefix="/events",
    description="Sales of one event: sold, reserved and remaining tickets, revenue, orders over time.",
)


class TicketTypeStatsSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    sold = fields.Integer(required=True, metadata={"description": "Valid tickets of paid or partly refunded orders"})
    reserved = fields.Integer(
        required=True, metadata={"description": "Tickets in unexpired carts and in orders awaiting payment"}
    )
    remaining = fields.Integer(required=True, metadata={"description": "How many a buyer could reserve now"})
    held = fields.Integer(required=True, metadata={"description": "Places kept off sale in this type's quotas"})
    revenue_minor = fields.Integer(required=True)


class QuotaStatsSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    size = fields.Integer(required=True)
    held = fields.Integer(required=True)
    sold = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    free = fields.Integer(required=True)


class BucketSchema(Schema):
    starts_at = fields.DateTime(required=True, metadata={"description": "In the event's time zone"})
    orders = fields.Integer(required=True)
    revenue_minor = fields.Integer(required=True)


class EventStatsSchema(Schema):
    event_id = fields.String(required=True)
    currency = fields.String(required=True)
    timezone = fields.String(required=True)
    sold = fields.Integer(required=True)
    reserved = fields.Integer(required=True)
    remaining = fields.Integer(required=True)
    revenue_minor = fields.Integer(required=True, metadata={"description": "Gross, tax included, minor units"})
    tax_minor = fields.Integer(required=True)
    ticket_types = fields.List(fields.Nested(TicketTypeStatsSchema), required=True)
    quotas = fields.List(fields.Nested(QuotaStatsSchema), required=True)
    bucket_unit = fields.String(required=True, validate=validate.OneOf((DAY, HOUR)))
    buckets = fields.List(
        fields.Nested(BucketSchema), required=True,
        metadata={"description": "Sold orders by the day (or hour) they were placed, empty ones included"},
    )


@blueprint.route("/<uuid:event_id>/stats")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, EventStatsSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
def get_event_stats(event_id: UUID) -> EventStats:
    """Sold, reserved, held and remaining tickets per type and quota, revenue, and orders over time."""
    return event_stats(event_or_404(event_id))
