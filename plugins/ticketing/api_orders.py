"""The organiser's order API: search and page through orders, see one with its history, settle or cancel it."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import selectinload

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.ticketing import checkout, orders
from plugins.ticketing.api_checkout import OrderSchema
from plugins.ticketing.orders import Order
from plugins.ticketing.plugin import ORDERS_MANAGE, ORDERS_VIEW

blueprint = Blueprint(
    "ticketing_orders", __name__, url_prefix="/orders",
    description="Orders of the organisation's events, for its staff.",
)


class OrderQuerySchema(Schema):
    q = fields.String(
        validate=validate.Length(max=200), metadata={"description": "Part of the code, email or buyer name"}
    )
    status = fields.String(validate=validate.OneOf(orders.STATUSES))
    event_id = fields.UUID()


class HistorySchema(Schema):
    action = fields.String(required=True)
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    details = fields.Dict(required=True)
    created_at = fields.DateTime(required=True)


class OrderDetailSchema(OrderSchema):
    history = fields.List(fields.Nested(HistorySchema), required=True)


class CancelSchema(Schema):
    reason = fields.String(load_default="", validate=validate.Length(max=500))


class MarkPaidSchema(Schema):
    reference = fields.String(allow_none=True, validate=validate.Length(max=200))


def _order(code: str) -> Order:
    order = checkout.order_by_code(code) if len(code) <= 32 else None
    if order is None:
        raise ApiError(404, "order_not_found", _("There is no such order."))
    return order


@blueprint.route("")
@require_permission(ORDERS_VIEW)
@blueprint.arguments(OrderQuerySchema, location="query")
@blueprint.response(200, OrderSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_orders(query: dict[str, Any], pagination_parameters: Any) -> Any:
    """Orders, newest first; ``q`` searches codes, emails and names."""
    condition: Any = sa.true()
    if text := (query.get("q") or "").strip():
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        condition = sa.and_(
            condition, sa.or_(Order.code.ilike(like), Order.email.ilike(like), Order.name.ilike(like))
        )
    if status := query.get("status"):
        condition = sa.and_(condition, Order.status == status)
    if event_id := query.get("event_id"):
        condition = sa.and_(condition, Order.event_id == str(event_id))
    pagination_parameters.item_count = db.session.scalar(sa.select(sa.func.count(Order.id)).where(condition))
    return db.session.scalars(
        sa.select(Order).where(condition).options(selectinload(Order.tickets))
        .order_by(Order.created_at.desc(), Order.id)
        .offset(pagination_parameters.first_item).limit(pagination_parameters.page_size)
    ).all()


@blueprint.route("/<code>/history")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, OrderDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such order")
def get_order(code: str) -> Order:
    """One order with its tickets and its history."""
    order = _order(code)
    checkout.expire_if_due(order)
    return order


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
