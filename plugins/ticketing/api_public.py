"""The public read API of a storefront: search its listed events and read one event, no sign-in needed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import abort, url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from plugins.ticketing.models import Event
from plugins.ticketing.sanitize import clean_description
from plugins.ticketing.search import SORTS, SearchError, parse_search, search_events
from plugins.ticketing.storefront import offers, visible_event

blueprint = Blueprint(
    "public_events_api", __name__, url_prefix="/public/events",
    description="Listed events of the storefront: search, filters and one event's public details",
)


class SearchArgsSchema(Schema):
    """Read as text and checked together, so that every bad filter is reported at once."""

    q = fields.String(metadata={"description": "Words to look for (title, category, tags, venue, description)."})
    date_from = fields.String(metadata={"description": "First day, YYYY-MM-DD, in the tenant's time zone."})
    date_to = fields.String(metadata={"description": "Last day, YYYY-MM-DD, in the tenant's time zone."})
    category = fields.String(metadata={"description": "Category name (case-insensitive)."})
    price_min = fields.String(metadata={"description": "Lowest ticket price, in minor units."})
    price_max = fields.String(metadata={"description": "Highest ticket price, in minor units."})
    free = fields.String(metadata={"description": "true: only events with a free ticket."})
    lat = fields.String(metadata={"description": "Latitude of a point (with lng)."})
    lng = fields.String(metadata={"description": "Longitude of a point (with lat)."})
    radius_km = fields.String(metadata={"description": "Distance from the point, km (default 50)."})
    sort = fields.String(metadata={"description": f"One of {', '.join(SORTS)} (default date)."})


class TicketOfferSchema(Schema):
    id = fields.String(attribute="ticket_type.id")
    name = fields.String(attribute="ticket_type.name")
    kind = fields.String(attribute="ticket_type.kind")
    price_minor = fields.Integer(metadata={"description": "Current price (minimum for pay what you want)."})
    state = fields.String(metadata={"description": "on_sale, not_started, ended, sold_out or unavailable."})
    min_per_order = fields.Integer(attribute="ticket_type.min_per_order")
    max_per_order = fields.Integer(attribute="ticket_type.max_per_order")


class PublicEventSchema(Schema):
    id = fields.String()
    slug = fields.String()
    title = fields.String()
    url = fields.String()
    status = fields.String()
    category = fields.String(allow_none=True)
    tags = fields.List(fields.String())
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    timezone = fields.String()
    venue_name = fields.String(allow_none=True)
    venue_address = fields.String(allow_none=True)
    latitude = fields.Float(allow_none=True)
    longitude = fields.Float(allow_none=True)
    online = fields.Boolean()
    cover_image_url = fields.String(allow_none=True)
    currency = fields.String()
    min_price_minor = fields.Integer(allow_none=True, metadata={"description": "Cheapest ticket offered."})
    distance_km = fields.Float(allow_none=True, metadata={"description": "From the lat/lng asked about."})
    rank = fields.Float(allow_none=True, metadata={"description": "Text relevance, when q is given."})


class PublicEventDetailSchema(PublicEventSchema):
    description_html = fields.String(metadata={"description": "Sanitised HTML."})
    refund_policy = fields.String()
    ticket_types = fields.List(fields.Nested(TicketOfferSchema))


def _summary(event: Event, currency: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": event.id, "slug": event.slug, "title": event.title,
        "url": url_for("storefront.event_page", slug=event.slug, _external=True),
        "status": event.status, "category": event.category, "tags": list(event.tags or []),
        "starts_at": event.starts_at, "ends_at": event.ends_at, "timezone": event.timezone,
        "venue_name": event.venue_name, "venue_address": event.venue_address,
        "latitude": float(event.latitude) if event.latitude is not None else None,
        "longitude": float(event.longitude) if event.longitude is not None else None,
        "online": bool(event.online_url), "cover_image_url": event.cover_image_url, "currency": currency,
        **extra,
    }


@blueprint.route("/")
@blueprint.arguments(SearchArgsSchema, location="query", as_kwargs=True)
@blueprint.response(200, PublicEventSchema(many=True))
@blueprint.alt_response(422, schema=None, description="A filter is not valid; details name each one")
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_events(pagination_parameters: Any, **query: Any) -> Any:
    """Listed events (public, published, not over), soonest first unless ``sort`` says otherwise.

    Ties are broken by event id, so ``page`` and ``page_size`` page through them without repeats.
    """
    settings = general_settings()
    try:
        criteria = parse_search(query, currency=settings.currency, prices_in_minor_units=True)
    except SearchError as exc:
        raise ApiError(422, "invalid_filters", _("Some search filters are not valid."), exc.details) from exc
    result = search_events(
        criteria, offset=pagination_parameters.first_item, limit=pagination_parameters.page_size,
        timezone=settings.timezone,
    )
    pagination_parameters.item_count = result.total
    return [
        _summary(hit.event, settings.currency, min_price_minor=hit.min_price_minor,
                 distance_km=hit.distance_km, rank=hit.rank)
        for hit in result.hits
    ]


@blueprint.route("/<slug>")
@blueprint.response(200, PublicEventDetailSchema)
@blueprint.alt_response(404, schema=None, description="No such event, or not public")
def get_event(slug: str) -> Any:
    """One event as its public page shows it, with its ticket types' prices and sale state.

    Unlisted events are found by their slug; drafts and private events are not found.
    """
    event = visible_event(slug)
    if event is None:
        abort(404)
    currency = general_settings().currency
    event_offers = offers(event, currency, datetime.now(UTC))
    prices = [offer.price_minor for offer in event_offers]
    return _summary(
        event, currency, min_price_minor=min(prices) if prices else None,
        description_html=clean_description(event.description_html or ""), refund_policy=event.refund_policy or "",
        ticket_types=event_offers,
    )
