"""Marshmallow schemas of the staff event API: what it accepts and what it answers.

Field limits mirror the columns, so an overlong value is a 422 naming the field, never a database
error. Times without an offset are wall-clock times in the event's time zone.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from marshmallow import Schema as MarshmallowSchema
from marshmallow import ValidationError, fields, pre_load, validate

from bilten_core.general_settings import general_settings
from plugins.ticketing.models import EVENT_STATUSES, TICKET_KINDS, VISIBILITIES

MAX_PRICE_MINOR = 10**11  # a thousand million in a two-decimal currency
MAX_PER_ORDER = 1000
MAX_CAPACITY = 10_000_000
MAX_BUYER_REFUND_HOURS = 24 * 365
DESCRIPTION_MAX = 50_000

_ID = fields.String(dump_only=True)


def _nul_fields(value: Any, path: str = "") -> list[str]:
    if isinstance(value, str):
        return [path] if "\x00" in value else []
    if isinstance(value, dict):
        return [hit for key, item in value.items() for hit in _nul_fields(item, f"{path}.{key}".lstrip("."))]
    if isinstance(value, list):
        return [hit for index, item in enumerate(value) for hit in _nul_fields(item, f"{path}.{index}")]
    return []


class Schema(MarshmallowSchema):
    """Refuses NUL characters anywhere in the input: text columns cannot hold them."""

    @pre_load
    def _refuse_nul(self, data: Any, **_kwargs: Any) -> Any:
        hits = _nul_fields(data)
        if hits:
            raise ValidationError({hit or "_schema": [_("Text cannot contain NUL characters.")] for hit in hits})
        return data


def _currency(_obj: Any) -> str:
    return general_settings().currency


# --- Quotas ------------------------------------------------------------------------------------


class StaffQuotaSchema(Schema):
    id = _ID
    event_id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    size = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_CAPACITY))
    held = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_CAPACITY),
                          metadata={"description": "Places the organiser keeps off sale."})
    ticket_type_ids = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=100),
                                  metadata={"description": "The ticket types that draw on this quota."})

    class Meta:
        ordered = True


class StaffQuotaDumpSchema(StaffQuotaSchema):
    ticket_type_ids = fields.Function(lambda quota: [item.id for item in quota.ticket_types])  # type: ignore[assignment]


# --- Ticket types ------------------------------------------------------------------------------


class StaffPriceTierSchema(Schema):
    price_minor = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=MAX_PRICE_MINOR))
    until = fields.DateTime(allow_none=True, metadata={"description": "The price applies until then (early bird)."})
    up_to_sold = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=1, max=MAX_CAPACITY),
                                metadata={"description": "The price applies to the first this many sold."})

    class Meta:
        ordered = True


class StaffTicketTypeSchema(Schema):
    id = _ID
    event_id = fields.String(dump_only=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(validate=validate.Length(max=2000))
    kind = fields.String(required=True, validate=validate.OneOf(TICKET_KINDS))
    price_minor = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=MAX_PRICE_MINOR),
        metadata={"description": "In minor units of the tenant's currency; the minimum for pay what you want."},
    )
    tax_rate_bp = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000),
                                 metadata={"description": "Basis points: 1900 is 19 %."})
    tax_inclusive = fields.Boolean()
    sales_start = fields.DateTime(allow_none=True)
    sales_end = fields.DateTime(allow_none=True)
    min_per_order = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_PER_ORDER))
    max_per_order = fields.Integer(strict=True, validate=validate.Range(min=1, max=MAX_PER_ORDER))
    hidden = fields.Boolean(metadata={"description": "Offered only once a code unlocks it."})
    addon_for_id = fields.String(allow_none=True, validate=validate.Length(max=64),
                                 metadata={"description": "Sold only with a ticket of this type of the same event."})
    position = fields.Integer(strict=True, validate=validate.Range(min=0, max=10_000))
    price_tiers = fields.List(fields.Nested(StaffPriceTierSchema), validate=validate.Length(max=20))
    quota_ids = fields.List(fields.String(validate=validate.Length(max=64)), validate=validate.Length(max=50),
                            metadata={"description": "The quotas this type draws on; availability is their least."})
    currency = fields.Function(_currency, dump_only=True)

    class Meta:
        ordered = True


class StaffTicketTypeDumpSchema(StaffTicketTypeSchema):
    quota_ids = fields.Function(lambda item: [quota.id for quota in item.event.quotas if item in quota.ticket_types])  # type: ignore[assignment]


# --- Events ------------------------------------------------------------------------------------


class StaffEventSchema(Schema):
    id = _ID
    slug = fields.String(dump_only=True)
    status = fields.String(dump_only=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description_html = fields.String(
        validate=validate.Length(max=DESCRIPTION_MAX),
        metadata={"description": "Formatting HTML; scripts, handlers and unsafe links are removed when saved."},
    )
    category = fields.String(allow_none=True, validate=validate.Length(max=60))
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=40)), validate=validate.Length(max=20))
    venue_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    venue_address = fields.String(allow_none=True, validate=validate.Length(max=500))
    latitude = fields.Decimal(allow_none=True, places=6, as_string=False,
                              validate=validate.Range(min=-90, max=90))
    longitude = fields.Decimal(allow_none=True, places=6, as_string=False,
                               validate=validate.Range(min=-180, max=180))
    online_url = fields.URL(allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=500))
    timezone = fields.String(validate=validate.Length(min=1, max=64),
                             metadata={"description": "IANA time zone, such as Europe/Berlin."})
    starts_at = fields.DateTime(required=True)
    ends_at = fields.DateTime(required=True)
    visibility = fields.String(validate=validate.OneOf(VISIBILITIES))
    organizer_email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    refund_policy = fields.String(validate=validate.Length(max=5000))
    buyer_refund_hours = fields.Integer(
        allow_none=True, strict=True, validate=validate.Range(min=0, max=MAX_BUYER_REFUND_HOURS),
        metadata={"description": "Buyers may ask for a refund until this many hours before the start; "
                                 "null: they cannot (staff still can)."},
    )
    refund_fee_percent_bp = fields.Integer(
        strict=True, validate=validate.Range(min=0, max=10000),
        metadata={"description": "What the organiser keeps of a refund a buyer asks for, in basis points "
                                 "(500 = 5 %)."},
    )
    capacity = fields.Integer(allow_none=True, strict=True, validate=validate.Range(min=0, max=MAX_CAPACITY))
    cover_image_url = fields.URL(allow_none=True, schemes={"http", "https"}, validate=validate.Length(max=500))
    series_id = fields.String(dump_only=True, allow_none=True)
    published_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)

    class Meta:
        ordered = True


class StaffEventDetailSchema(StaffEventSchema):
    ticket_types = fields.List(fields.Nested(StaffTicketTypeDumpSchema), dump_only=True)
    quotas = fields.List(fields.Nested(StaffQuotaDumpSchema), dump_only=True)
    allowed_transitions = fields.Method("_allowed", dump_only=True)

    def _allowed(self, event: Any) -> list[str]:
        from plugins.ticketing.events import allowed_transitions

        return allowed_transitions(event)


class StaffEventListArgs(Schema):
    status = fields.String(validate=validate.OneOf(EVENT_STATUSES))
    starts_from = fields.Date(data_key="from", metadata={"description": "Starting on or after this day."})
    starts_to = fields.Date(data_key="to", metadata={"description": "Starting on or before this day."})


class StaffCopySchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=200))
    starts_at = fields.DateTime(metadata={"description": "Move the copy here, keeping the duration."})


class StaffTransitionSchema(Schema):
    to = fields.String(required=True, validate=validate.OneOf(EVENT_STATUSES))


class StaffSeriesCreateSchema(Schema):
    template_event_id = fields.UUID(required=True)
    title = fields.String(validate=validate.Length(min=1, max=200))
    starts = fields.List(fields.DateTime(), required=True, validate=validate.Length(min=1, max=100),
                         metadata={"description": "The start of each date; each keeps the template's duration."})


class StaffSeriesSchema(Schema):
    id = fields.String()
    title = fields.String()
    events = fields.List(fields.Nested(StaffEventDetailSchema))


class _Partial:
    """For PATCH: every field optional; only those sent change."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(partial=True, **kwargs)  # type: ignore[call-arg]


class StaffEventPatchSchema(_Partial, StaffEventSchema):
    pass


class StaffTicketTypePatchSchema(_Partial, StaffTicketTypeSchema):
    pass


class StaffQuotaPatchSchema(_Partial, StaffQuotaSchema):
    pass
