"""The buyer's API: availability, reservations (the cart), checkout and the guest's order lookup.

No sign-in is needed: a reservation id is a bearer secret, and an order is found by its code
together with the buyer's email address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import EXCLUDE, Schema, fields, post_dump, validate

from bilten_core.errors import ApiError
from plugins.ticketing import checkout, inventory, reservations
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import fees_of
from plugins.ticketing.reservations import MAX_QUANTITY, Item, Reservation

blueprint = Blueprint(
    "ticketing_checkout", __name__, url_prefix="",
    description="Buying tickets: availability, reservations, checkout and finding an order again.",
)

IDEMPOTENCY_KEY_MAX = 200
MAX_ANSWERS = 100


class ItemSchema(Schema):
    class Meta:
        # Prices, totals and the like from the client are ignored: the server decides them.
        unknown = EXCLUDE

    ticket_type_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    quantity = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=MAX_QUANTITY))
    price_minor = fields.Integer(
        strict=True, allow_none=True, metadata={"description": "Only for pay-what-you-want tickets; ignored otherwise."}
    )


class ReserveSchema(Schema):
    class Meta:
        # Prices, totals and the like from the client are ignored: the server decides them.
        unknown = EXCLUDE

    items = fields.List(fields.Nested(ItemSchema), required=True, validate=validate.Length(min=1, max=50))
    unlock_code = fields.String(allow_none=True, validate=validate.Length(max=100))


class LineSchema(Schema):
    ticket_type_id = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_price_minor = fields.Integer(required=True)
    unit_tax_minor = fields.Integer(required=True)
    tax_rate_bp = fields.Integer(required=True)
    tax_inclusive = fields.Boolean(required=True)
    total_minor = fields.Integer(required=True)


class ReservationSchema(Schema):
    id = fields.String(required=True)
    event_id = fields.String(required=True)
    expires_at = fields.DateTime(required=True)
    lines = fields.List(fields.Nested(LineSchema), required=True)
    total_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True)


class AvailabilitySchema(Schema):
    event_id = fields.String(required=True)
    ticket_types = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


def answers_field() -> fields.Dict:
    return fields.Dict(
        keys=fields.String(validate=validate.Length(max=64)), load_default=dict,
        validate=validate.Length(max=MAX_ANSWERS),
        metadata={"description": "Answers to the event's questions, by question id: text, one of a choice's "
                                 "options, true/false for a checkbox, or a date as YYYY-MM-DD."},
    )


class AttendeeSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    name = fields.String(allow_none=True, validate=validate.Length(max=200))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    answers = answers_field()


class PlaceOrderSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    reservation_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    email = fields.Email(required=True, validate=validate.Length(max=254))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    attendees = fields.List(
        fields.Nested(AttendeeSchema), load_default=list, validate=validate.Length(max=MAX_QUANTITY)
    )
    payment_provider = fields.String(allow_none=True, validate=validate.Length(max=40))
    answers = answers_field()


class TicketSchema(Schema):
    id = fields.String(required=True)
    ticket_type_id = fields.String(required=True)
    code = fields.String(required=True)
    price_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True)
    attendee_name = fields.String(allow_none=True)
    attendee_email = fields.String(allow_none=True)
    valid = fields.Boolean(required=True)
    answers = fields.Dict(keys=fields.String(), required=True)


class OrderSchema(Schema):
    id = fields.String(required=True)
    code = fields.String(required=True)
    event_id = fields.String(required=True)
    status = fields.String(required=True)
    email = fields.String(required=True)
    name = fields.String(required=True)
    total_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    payment_provider = fields.String(required=True)
    payment_due_at = fields.DateTime(allow_none=True)
    payment_url = fields.String(
        allow_none=True, metadata={"description": "Where the buyer pays, while the order awaits payment."}
    )
    paid_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)
    answers = fields.Dict(keys=fields.String(), required=True)
    tickets = fields.List(fields.Nested(TicketSchema), required=True)


class FeeLineSchema(Schema):
    label = fields.String(required=True)
    amount_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True, metadata={"description": "The tax included in the amount"})
    tax_rate_bp = fields.Integer(required=True)


def _fees(order: Order) -> list[dict[str, Any]]:
    dumped: list[dict[str, Any]] = FeeLineSchema(many=True).dump(fees_of(order))
    return dumped


class PricedOrderSchema(OrderSchema):
    """An order with the fees its buyer pays (or paid) on top of the tickets, as the order page shows them."""

    fees = fields.Function(_fees, metadata={
        "type": "array", "items": {"type": "object"},
        "description": "Fees on top of the tickets (label, amount_minor, tax_minor, tax_rate_bp), such as a card "
                       "payment's service fee when the organiser passes it on; empty when there are none",
    })
    buyer_total_minor = fields.Integer(dump_only=True, metadata={
        "description": "What the buyer pays: total_minor and the fees",
    })

    @post_dump
    def _add_buyer_total(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        # From the fees just dumped: asking the payment plugins twice would cost their queries twice.
        data["buyer_total_minor"] = data["total_minor"] + sum(line["amount_minor"] for line in data["fees"])
        return data


class GuestLookupSchema(Schema):
    email = fields.String(required=True, validate=validate.Length(min=1, max=254))


def _reservation_body(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id, "event_id": reservation.event_id, "expires_at": reservation.expires_at,
        "lines": [
            {
                "ticket_type_id": line.ticket_type_id, "quantity": line.quantity,
                "unit_price_minor": line.unit_price_minor, "unit_tax_minor": line.unit_tax_minor,
                "tax_rate_bp": line.tax_rate_bp, "tax_inclusive": line.tax_inclusive,
                "total_minor": line.total_minor,
            }
            for line in reservation.lines
        ],
        "total_minor": reservation.total_minor, "tax_minor": reservation.tax_minor,
    }


@blueprint.route("/events/<uuid:event_id>/availability")
@blueprint.response(200, AvailabilitySchema)
@blueprint.alt_response(404, schema=None, description="No such event on sale")
def get_availability(event_id: Any) -> Any:
    """How many tickets of each ticket type of a published event can be reserved right now."""
    from bilten_core.db import db

    event = db.session.get(Event, str(event_id))
    if event is None or event.status == "draft" or event.visibility == "private":
        raise ApiError(404, "event_not_found", _("There is no such event."))
    now = datetime.now(UTC)
    off_sale = {
        t.id for t in event.ticket_types
        if (t.sales_start and now < t.sales_start) or (t.sales_end and now >= t.sales_end)
    }
    hidden = {t.id for t in event.ticket_types if t.hidden}
    available = {
        k: 0 if k in off_sale or event.status != "published" else v
        for k, v in inventory.availability(event.id).items() if k not in hidden
    }
    return {"event_id": event.id, "ticket_types": available}


@blueprint.route("/reservations", methods=["POST"])
@blueprint.arguments(ReserveSchema)
@blueprint.response(201, ReservationSchema)
@blueprint.alt_response(409, schema=None, description="Sold out; details.available says what is left")
@blueprint.alt_response(422, schema=None, description="Invalid items, limits or sales window")
def reserve(body: dict[str, Any]) -> Any:
    """Reserve tickets for a while (15 minutes unless the organisation set otherwise), at the server's prices.

    Prices sent by the client are ignored, except the amount offered for a pay-what-you-want ticket.
    The returned ``id`` is the only key to the reservation: keep it secret.
    """
    items = [Item(i["ticket_type_id"], i["quantity"], i.get("price_minor")) for i in body["items"]]
    reservation = reservations.create_reservation(items, body.get("unlock_code"))
    return _reservation_body(reservation)


@blueprint.route("/reservations/<reservation_id>")
@blueprint.response(200, ReservationSchema)
@blueprint.alt_response(404, schema=None, description="Unknown or used reservation")
@blueprint.alt_response(410, schema=None, description="Expired reservation")
def get_reservation(reservation_id: str) -> Any:
    """A live reservation, with the time it expires."""
    return _reservation_body(reservations.live_reservation(reservation_id))


@blueprint.route("/reservations/<reservation_id>", methods=["DELETE"])
@blueprint.response(204)
@blueprint.alt_response(404, schema=None, description="Unknown or used reservation")
@blueprint.alt_response(410, schema=None, description="Expired reservation")
def delete_reservation(reservation_id: str) -> None:
    """Give the reserved tickets back at once."""
    reservations.drop_reservation(reservation_id)


@blueprint.route("/orders", methods=["POST"])
@blueprint.arguments(PlaceOrderSchema)
@blueprint.response(201, PricedOrderSchema)
@blueprint.alt_response(200, schema=PricedOrderSchema, description="The order this key or reservation already made")
@blueprint.alt_response(410, schema=None, description="The reservation expired")
@blueprint.alt_response(422, schema=None, description="Missing or invalid answers (details: each answer's path)")
def place_order(body: dict[str, Any]) -> Any:
    """Check out a reservation. Send an ``Idempotency-Key`` header: repeating the request returns the same order.

    Orders that cost nothing are paid at once; otherwise the order awaits payment with the chosen provider
    (``invoice`` by default).
    """
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= IDEMPOTENCY_KEY_MAX:
        raise ApiError(
            400, "invalid_idempotency_key",
            _("The Idempotency-Key header must be 1 to %(max)d characters.", max=IDEMPOTENCY_KEY_MAX),
        )
    attendees = [checkout.Attendee(a.get("name"), a.get("email"), a["answers"]) for a in body["attendees"]]
    order, created = checkout.place_order(
        body["reservation_id"], body["email"], body["name"], attendees, body.get("payment_provider"), key,
        answers=body["answers"], remote_addr=request.remote_addr,
    )
    return order, 201 if created else 200


@blueprint.route("/orders/<code>")
@blueprint.arguments(GuestLookupSchema, location="query")
@blueprint.response(200, PricedOrderSchema)
@blueprint.alt_response(404, schema=None, description="No order with this code and email")
def guest_order(query: dict[str, Any], code: str) -> Order:
    """Find an order by its code and the buyer's email address."""
    order = checkout.guest_order(code, query["email"])
    if order is None:
        raise ApiError(404, "order_not_found", _("No order matches this code and email address."))
    return order
