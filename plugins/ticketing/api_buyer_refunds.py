"""The buyer's API to ask for a refund, checked like the guest's order lookup (code and email address)."""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from bilten_core.auth import throttle
from bilten_core.errors import ApiError
from bilten_core.kernel import kernel
from plugins.ticketing import buyer_refunds, checkout

blueprint = Blueprint(
    "ticketing_buyer_refunds", __name__, url_prefix="",
    description="Refunds a buyer asks for within the event's refund policy.",
)

ENDPOINT = "ticketing_buyer_refunds.request_refund"
EMAIL_MAX = 254


class RefundRequestBodySchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=EMAIL_MAX),
                          metadata={"description": "The address the order was placed with."})
    ticket_ids = fields.List(fields.String(validate=validate.Length(min=1, max=64)), required=True,
                             validate=validate.Length(min=1, max=200))


class BuyerRefundSchema(Schema):
    order_code = fields.String()
    ticket_ids = fields.List(fields.String())
    amount_minor = fields.Integer(metadata={"description": "Paid back: the tickets' price less the fee."})
    fee_minor = fields.Integer(metadata={"description": "Kept by the organiser under the event's policy."})
    currency = fields.String()
    created_at = fields.DateTime()


@blueprint.route("/orders/<code>/refund-requests", methods=["POST"])
@blueprint.arguments(RefundRequestBodySchema)
@blueprint.response(201, BuyerRefundSchema)
@blueprint.alt_response(200, schema=BuyerRefundSchema, description="Made before with this Idempotency-Key")
@blueprint.alt_response(404, schema=None, description="No order with this code and email")
@blueprint.alt_response(409, schema=None, description="Outside the event's refund policy (the message says why)")
@blueprint.alt_response(422, schema=None, description="No ticket chosen, or one not refundable")
def request_refund(body: dict[str, Any], code: str) -> Any:
    """Refund tickets of an order as its buyer, less the organiser's fee. Send an ``Idempotency-Key`` header
    (up to 64 characters): repeating the request returns the same refund."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= buyer_refunds.FORM_KEY_MAX:
        raise ApiError(400, "invalid_idempotency_key", _("The Idempotency-Key header must be 1 to %(max)d characters.",
                                                          max=buyer_refunds.FORM_KEY_MAX))
    order = checkout.guest_order(code, body["email"])
    if order is None:
        raise ApiError(404, "order_not_found", _("No order matches this code and email address."))
    made, created = buyer_refunds.request_refund(order, body["ticket_ids"], key or buyer_refunds.new_form_key())
    return {"order_code": order.code, "ticket_ids": [str(i) for i in made.ticket_ids],
            "amount_minor": made.amount_minor, "fee_minor": made.fee_minor, "currency": made.currency,
            "created_at": made.created_at}, 201 if created else 200


def limit_requests(app: Flask) -> None:
    """Limit refund requests as strictly as order lookups, sharing their count per typed address."""
    limiter = next(iter(app.extensions["limiter"]))  # the kernel's, the only one
    config = kernel(app).settings.throttle
    throttle.limit_endpoint(app, limiter, ENDPOINT, config.sign_in_per_ip)
    throttle.limit_endpoint_per_account(app, limiter, ENDPOINT, config.sign_in_per_account, "order_lookup")
