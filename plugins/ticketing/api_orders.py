"""The organiser's order API: search and page through orders and attendees, see an order with its history,
approve or reject one held for review, settle, cancel, refund or mail it again, change its attendees, and
export orders and attendees as CSV.

Looking needs ``orders.view``; changing needs ``orders.manage``. The work is done in
:mod:`plugins.ticketing.order_admin`, which the organiser's pages share.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth.authorize import require_permission
from plugins.ticketing import checkout, order_admin, orders, refunds, schemas
from plugins.ticketing.api_checkout import OrderSchema, PricedOrderSchema, TicketSchema
from plugins.ticketing.api_events import event_or_404
from plugins.ticketing.order_admin import AttendeeFilters, OrderFilters
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.plugin import ORDERS_MANAGE, ORDERS_VIEW
from plugins.ticketing.refunds import Refund

blueprint = Blueprint(
    "ticketing_orders", __name__, url_prefix="/orders",
    description="Orders of the organisation's events, for its staff.",
)

# The exports are files, not JSON: documented as such, and sent as they are.
CSV_FILE = {"type": "string", "format": "binary"}
View = TypeVar("View", bound=Callable[..., Any])

event_blueprint = Blueprint(
    "ticketing_event_orders", __name__, url_prefix="/events",
    description="The attendees of one of the organisation's events, and CSV exports of its orders and attendees.",
)


class EventOrderQuerySchema(schemas.Schema):
    q = fields.String(
        validate=validate.Length(max=order_admin.SEARCH_MAX),
        metadata={"description": "Part of the code, the buyer's email or name, or an attendee's name"},
    )
    status = fields.String(validate=validate.OneOf(orders.STATUSES))
    created_from = fields.Date(metadata={"description": "Placed on or after this day (the organisation's time zone)"})
    created_to = fields.Date(metadata={"description": "Placed on or before this day (the organisation's time zone)"})


class OrderQuerySchema(EventOrderQuerySchema):
    event_id = fields.UUID()


class AttendeeQuerySchema(schemas.Schema):
    q = fields.String(
        validate=validate.Length(max=order_admin.SEARCH_MAX),
        metadata={"description": "Part of the attendee's name or email, the order code, or the buyer's name or email"},
    )
    ticket_type_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(orders.STATUSES), metadata={"description": "The order's status"})
    valid = fields.Boolean(load_default=False, metadata={"description": "Only tickets that are still valid"})


class StaffTicketSchema(TicketSchema):
    ticket_type_name = fields.String(attribute="ticket_type.name", required=True)


class HistorySchema(Schema):
    action = fields.String(required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    details = fields.Dict(required=True)
    created_at = fields.DateTime(required=True)


class OrderDetailSchema(PricedOrderSchema):
    tickets = fields.List(fields.Nested(StaffTicketSchema), required=True)
    history = fields.List(fields.Nested(HistorySchema), required=True)


class StaffAttendeeSchema(StaffTicketSchema):
    order_code = fields.String(attribute="order.code", required=True)
    order_status = fields.String(attribute="order.status", required=True)
    buyer_name = fields.String(attribute="order.name", required=True)
    buyer_email = fields.String(attribute="order.email", required=True)


class AttendeeChangeSchema(schemas.Schema):
    name = fields.String(
        allow_none=True, validate=validate.Length(max=order_admin.ATTENDEE_NAME_MAX),
        metadata={"description": "Empty or null clears it; left out, it stays"},
    )
    email = fields.String(
        allow_none=True, validate=validate.Length(max=order_admin.ATTENDEE_EMAIL_MAX),
        metadata={"description": "Empty or null clears it; left out, it stays"},
    )


class ResentSchema(Schema):
    kind = fields.String(required=True, metadata={"description": "order_confirmed or order_awaiting_payment"})
    order = fields.Nested(OrderDetailSchema, required=True)


class CancelSchema(schemas.Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class MarkPaidSchema(schemas.Schema):
    reference = fields.String(allow_none=True, validate=validate.Length(max=200))


class RefundRequestSchema(schemas.Schema):
    ticket_ids = fields.List(
        fields.UUID(), load_default=list, validate=validate.Length(max=1000),
        metadata={"description": "Tickets to refund: they stop being valid and their places go back on sale"},
    )
    amount_minor = fields.Integer(
        allow_none=True, load_default=None,
        metadata={"description": "What to pay back, in minor units; by default the chosen tickets' prices"},
    )
    reason = fields.String(load_default="", validate=validate.Length(max=refunds.REASON_MAX))
    reference = fields.String(
        allow_none=True, load_default=None, validate=validate.Length(min=1, max=refunds.REFERENCE_MAX),
        metadata={"description": "The refund's id at the provider or bank; the same one twice records one refund"},
    )


class RefundSchema(Schema):
    id = fields.String(required=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    ticket_ids = fields.List(fields.String(), required=True)
    reason = fields.String(required=True)
    reference = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "pending, succeeded or failed"})
    created_at = fields.DateTime(required=True)


def _order(code: str) -> Order:
    return order_admin.order_of_event(code)


def _order_filters(query: dict[str, Any], event_id: Any = None) -> OrderFilters:
    event_id = event_id or query.get("event_id")
    return OrderFilters(
        event_id=str(event_id) if event_id else None, status=query.get("status"), q=query.get("q") or "",
        created_from=query.get("created_from"), created_to=query.get("created_to"),
    )


def _attendee_filters(query: dict[str, Any], event_id: UUID) -> AttendeeFilters:
    type_id = query.get("ticket_type_id")
    return AttendeeFilters(
        event_id=str(event_id), ticket_type_id=str(type_id) if type_id else None, status=query.get("status"),
        valid_only=query["valid"], q=query.get("q") or "",
    )


@blueprint.route("")
@require_permission(ORDERS_VIEW)
@blueprint.arguments(OrderQuerySchema, location="query")
@blueprint.response(200, OrderSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_orders(query: dict[str, Any], pagination_parameters: Any) -> Any:
    """Orders, newest first; ``q`` searches codes, buyers' emails and names, and attendees' names."""
    filters = _order_filters(query)
    pagination_parameters.item_count = order_admin.count_orders(filters)
    return order_admin.find_orders(filters, pagination_parameters.first_item, pagination_parameters.page_size)


@blueprint.route("/<code>/history")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such order")
def get_order(code: str) -> Order:
    """One order with its tickets and its history.

    (``GET /orders/<code>`` is the buyer's own lookup, with ``?email=``.)
    """
    return _order(code)


@blueprint.route("/<code>/cancel", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(CancelSchema)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(409, schema=None, description="The order cannot be cancelled in its state")
def cancel_order(body: dict[str, Any], code: str) -> Order:
    """Cancel an order: its tickets stop being valid and go back on sale at once."""
    order = _order(code)
    checkout.cancel_order(order, body["reason"])
    return order


@blueprint.route("/<code>/approve", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such order")
@blueprint.alt_response(409, schema=None, description="The order is not held for review (any more)")
@blueprint.alt_response(410, schema=None, description="The review deadline passed and the places were sold")
def approve_order(code: str) -> Order:
    """Approve an order held for review: its payment starts now, as at checkout (paid at once, or
    awaiting payment with the provider's ``payment_url``), and the buyer is mailed."""
    order = _order(code)
    checkout.approve_held(order)
    return order


@blueprint.route("/<code>/reject", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(CancelSchema)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such order")
@blueprint.alt_response(409, schema=None, description="The order is not held for review (any more)")
def reject_order(body: dict[str, Any], code: str) -> Order:
    """Reject an order held for review: it is cancelled and its places go back on sale; nothing was charged."""
    order = _order(code)
    checkout.reject_held(order, body["reason"])
    return order


@blueprint.route("/<code>/mark-paid", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(MarkPaidSchema)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(409, schema=None, description="The order is not awaiting payment")
@blueprint.alt_response(410, schema=None, description="The deadline passed and the places were sold")
def mark_paid(body: dict[str, Any], code: str) -> Order:
    """Record the payment of an invoice order (a bank transfer arrived)."""
    order = _order(code)
    checkout.mark_paid(order, body.get("reference"))
    return order


@blueprint.route("/<code>/refunds", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(RefundRequestSchema)
@blueprint.response(201, RefundSchema)
@blueprint.alt_response(200, schema=RefundSchema, description="A refund with this reference was recorded before")
@blueprint.alt_response(404, schema=None, description="No such order")
@blueprint.alt_response(409, schema=None, description="Unpaid, a ticket refunded before, or its provider cannot refund")
@blueprint.alt_response(422, schema=None, description="Nothing chosen, an unknown ticket, or more than is refundable")
def refund_order(body: dict[str, Any], code: str) -> tuple[Refund, int]:
    """Refund tickets (they stop being valid, their places go back on sale) and/or an amount."""
    order = _order(code)
    refund, created = refunds.refund(
        order, ticket_ids=[str(ticket_id) for ticket_id in body["ticket_ids"]], amount_minor=body["amount_minor"],
        reason=body["reason"], reference=body["reference"],
    )
    return refund, 201 if created else 200


@blueprint.route("/<code>/refunds")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, RefundSchema(many=True))
@blueprint.alt_response(404, schema=None, description="No such order")
def list_refunds(code: str) -> list[Refund]:
    """The order's refunds, oldest first."""
    return refunds.refunds_of(_order(code))


@blueprint.route("/<code>/resend", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.response(200, ResentSchema)
@blueprint.alt_response(404, schema=None, description="No such order")
@blueprint.alt_response(409, schema=None, description="No mail fits the order's state (cancelled, expired, ...)")
def resend_mail(code: str) -> dict[str, Any]:
    """Mail the buyer again: the tickets of a paid order, or how to pay one awaiting payment."""
    order = _order(code)
    kind = order_admin.resend(order)
    return {"kind": kind, "order": order}


@blueprint.route("/<code>/tickets/<uuid:ticket_id>", methods=["PATCH"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(AttendeeChangeSchema)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such order, or no such ticket in it")
@blueprint.alt_response(409, schema=None, description="The order is cancelled, expired or refunded")
@blueprint.alt_response(422, schema=None, description="A name too long or an invalid email address")
def change_attendee(body: dict[str, Any], code: str, ticket_id: UUID) -> Order:
    """Change the attendee's name or email of one ticket; the old and new values go into the history."""
    order = _order(code)
    ticket = order_admin.ticket_of(order, str(ticket_id))
    order_admin.rename_attendee(
        ticket, body.get("name", ticket.attendee_name), body.get("email", ticket.attendee_email)
    )
    return order


@event_blueprint.route("/<uuid:event_id>/attendees")
@require_permission(ORDERS_VIEW)
@event_blueprint.arguments(AttendeeQuerySchema, location="query")
@event_blueprint.response(200, StaffAttendeeSchema(many=True))
@event_blueprint.alt_response(404, schema=None, description="No such event")
@event_blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_attendees(query: dict[str, Any], event_id: UUID, pagination_parameters: Any) -> list[Ticket]:
    """The event's tickets with their attendees and orders, newest order first."""
    event_or_404(event_id)
    filters = _attendee_filters(query, event_id)
    pagination_parameters.item_count = order_admin.count_attendees(filters)
    return order_admin.find_attendees(filters, pagination_parameters.first_item, pagination_parameters.page_size)


def _csv_export(path: str, query_schema: type[Schema], one_line_per: str) -> Callable[[View], View]:
    """The route of one of the event's CSV exports: the list's filters in the query, and a file (not JSON)."""

    def register(view: View) -> View:
        view = event_blueprint.alt_response(404, schema=None, description="No such event")(view)
        view = event_blueprint.response(
            200, CSV_FILE, content_type="text/csv", description=f"One line per {one_line_per}, after a header line"
        )(view)
        view = event_blueprint.arguments(query_schema, location="query")(view)
        return event_blueprint.route(path)(require_permission(ORDERS_VIEW)(view))

    return register


@_csv_export("/<uuid:event_id>/orders.csv", EventOrderQuerySchema, "order")
def export_orders(query: dict[str, Any], event_id: UUID) -> Response:
    """The event's orders as CSV, with the same filters as the order list (no pages: all of them)."""
    event = event_or_404(event_id)
    lines = order_admin.orders_csv(_order_filters(query, event_id))
    return order_admin.csv_download(lines, f"orders-{event.slug}.csv")


@_csv_export("/<uuid:event_id>/attendees.csv", AttendeeQuerySchema, "ticket")
def export_attendees(query: dict[str, Any], event_id: UUID) -> Response:
    """The event's attendees as CSV, with the same filters as the attendee list (no pages: all of them)."""
    event = event_or_404(event_id)
    lines = order_admin.attendees_csv(_attendee_filters(query, event_id))
    return order_admin.csv_download(lines, f"attendees-{event.slug}.csv")
