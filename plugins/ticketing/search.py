"""Finding events on a tenant's storefront and public API: full text, filters, sorting, pages.

Text search uses the ``events.search_vector`` column (migration tk0003): title weighs most, then
category and tags, then the venue, then the description. Filters combine with AND. Every order
ends with the event id, so pages never repeat or skip an event that ties with another.

Popularity is the number of tickets sold (valid tickets of orders that keep them: reserved,
awaiting payment, paid, partly refunded); events that sold as many come soonest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from babel.numbers import get_currency_precision
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import TSVECTOR

from bilten_core.db import db
from plugins.ticketing.models import Event, TicketType

SORTS = ("date", "relevance", "popularity", "distance")
TEXT_SEARCH_CONFIG = "english"
EARTH_RADIUS_KM = 6371.0
DEFAULT_RADIUS_KM = 50.0
MAX_RADIUS_KM = 20000.0
MAX_QUERY_LENGTH = 200
# Storefronts show events from listing until they end; anything else is a visit by link only.
LISTED_STATUSES = ("published",)

search_vector = sa.literal_column("events.search_vector", TSVECTOR)


class SearchError(ValueError):
    """Filters that cannot be applied; ``details`` maps each bad parameter to what is wrong."""

    def __init__(self, details: dict[str, list[str]]) -> None:
        super().__init__("; ".join(f"{key}: {' '.join(msgs)}" for key, msgs in details.items()))
        self.details = details


@dataclass(frozen=True)
class EventSearch:
    """What a visitor asked for. Prices in minor units; dates are days in the tenant's time zone."""

    text: str = ""
    date_from: date | None = None
    date_to: date | None = None
    category: str | None = None
    price_min: int | None = None
    price_max: int | None = None
    free_only: bool = False
    latitude: float | None = None
    longitude: float | None = None
    radius_km: float | None = None
    sort: str = "date"

    @property
    def has_point(self) -> bool:
        return self.latitude is not None and self.longitude is not None

    @property
    def effective_sort(self) -> str:
        # Relevance without words, or distance without a point, would be an arbitrary order.
        if self.sort == "relevance" and not self.text:
            return "date"
        if self.sort == "distance" and not self.has_point:
            return "date"
        return self.sort


@dataclass
class EventHit:
    event: Event
    min_price_minor: int | None
    rank: float | None = None
    distance_km: float | None = None


@dataclass
class SearchPage:
    hits: list[EventHit] = field(default_factory=list)
    total: int = 0


def parse_search(args: Mapping[str, Any], *, currency: str, prices_in_minor_units: bool) -> EventSearch:
    """Read search parameters from a query string; raise :class:`SearchError` listing every bad one.

    The API takes prices in minor units (as it reports them); the storefront's form in the
    currency's usual notation (``12.50``).
    """
    errors: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    text = str(args.get("q") or "").strip()
    if len(text) > MAX_QUERY_LENGTH:
        fail("q", _("Search for at most %(count)d characters.", count=MAX_QUERY_LENGTH))

    def day(name: str) -> date | None:
        raw = str(args.get(name) or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            fail(name, _("Give a date as YYYY-MM-DD, such as 2026-05-31."))
            return None

    date_from, date_to = day("date_from"), day("date_to")
    if date_from and date_to and date_to < date_from:
        fail("date_to", _("The end of the date range is before its start."))

    def price(name: str) -> int | None:
        raw = str(args.get(name) or "").strip()
        if not raw:
            return None
        exponent = get_currency_precision(currency)
        try:
            amount = Decimal(raw) if not prices_in_minor_units else Decimal(int(raw))
        except (InvalidOperation, ValueError):
            fail(name, _("Give a price as a number, such as 12.50.") if not prices_in_minor_units
                 else _("Give a price in minor units, as a whole number."))
            return None
        if not amount.is_finite() or amount < 0:
            fail(name, _("A price cannot be negative."))
            return None
        minor = amount if prices_in_minor_units else amount.scaleb(exponent)
        if minor != minor.to_integral_value():
            fail(name, _("%(currency)s has at most %(digits)d decimal places.", currency=currency, digits=exponent))
            return None
        if minor > 10**15:
            fail(name, _("This price is too large."))
            return None
        return int(minor)

    price_min, price_max = price("price_min"), price("price_max")
    if price_min is not None and price_max is not None and price_max < price_min:
        fail("price_max", _("The highest price is below the lowest."))

    def number(name: str, low: float, high: float) -> float | None:
        raw = str(args.get(name) or "").strip()
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            fail(name, _("Give a number."))
            return None
        if not low <= value <= high:  # also refuses NaN
            fail(name, _("Give a number from %(low)s to %(high)s.", low=f"{low:g}", high=f"{high:g}"))
            return None
        return value

    latitude, longitude = number("lat", -90, 90), number("lng", -180, 180)
    radius = number("radius_km", 0.1, MAX_RADIUS_KM)
    point_is_valid = "lat" not in errors and "lng" not in errors
    if point_is_valid and (latitude is None) != (longitude is None):
        missing = "lng" if longitude is None else "lat"
        fail(missing, _("Give both a latitude (lat) and a longitude (lng) to search near a point."))
    if point_is_valid and radius is not None and latitude is None and longitude is None:
        fail("radius_km", _("A distance needs a point: give lat and lng too."))

    sort = str(args.get("sort") or "date").strip()
    if sort not in SORTS:
        fail("sort", _("Sort by one of: %(choices)s.", choices=", ".join(SORTS)))
    free = str(args.get("free") or "").strip().lower()
    if free not in ("", "0", "1", "true", "false", "on", "yes", "no"):
        fail("free", _("Use true or false."))
    category = str(args.get("category") or "").strip() or None
    if category is not None and len(category) > 60:
        fail("category", _("No category has a name this long."))

    if errors:
        raise SearchError(errors)
    return EventSearch(
        text=text, date_from=date_from, date_to=date_to, category=category,
        price_min=price_min, price_max=price_max, free_only=free in ("1", "true", "on", "yes"),
        latitude=latitude, longitude=longitude,
        radius_km=radius if radius is not None else (DEFAULT_RADIUS_KM if latitude is not None else None),
        sort=sort,
    )


def haversine_km(latitude: Any, longitude: Any, point_latitude: float, point_longitude: float) -> Any:
    """Great-circle distance in km from a point to the coordinates in two SQL columns."""
    lat = sa.func.radians(sa.cast(latitude, sa.Float))
    lng = sa.func.radians(sa.cast(longitude, sa.Float))
    plat = sa.func.radians(sa.literal(point_latitude, sa.Float))
    plng = sa.func.radians(sa.literal(point_longitude, sa.Float))
    inner = sa.func.power(sa.func.sin((lat - plat) / 2), 2) + sa.func.cos(plat) * sa.func.cos(lat) * sa.func.power(
        sa.func.sin((lng - plng) / 2), 2
    )
    # least() keeps rounding from pushing asin's argument past 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * sa.func.asin(sa.func.least(1.0, sa.func.sqrt(inner)))


def day_bounds(criteria: EventSearch, timezone: str) -> tuple[datetime | None, datetime | None]:
    """The date range as instants: from the start of ``date_from`` to the end of ``date_to``, local time."""
    try:
        zone: Any = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    start = datetime.combine(criteria.date_from, time(), zone) if criteria.date_from else None
    end = datetime.combine(criteria.date_to + timedelta(days=1), time(), zone) if criteria.date_to else None
    return start, end


def _offered_ticket_types() -> Any:
    # What a buyer can pick on their own: not hidden behind a code, not an add-on of another ticket.
    return sa.and_(TicketType.hidden.is_(False), TicketType.addon_for_id.is_(None))


def _sold_counts() -> Any:
    """Tickets sold per event (``event_id``, ``sold``): valid tickets of orders that keep them."""
    from plugins.ticketing.orders import ACTIVE_STATUSES, Order, Ticket

    return (
        sa.select(Order.event_id, sa.func.count(Ticket.id).label("sold"))
        .join(Ticket, Ticket.order_id == Order.id)
        .where(Order.status.in_(ACTIVE_STATUSES), Ticket.valid.is_(True))
        .group_by(Order.event_id)
        .subquery("sold")
    )


def search_events(
    criteria: EventSearch,
    *,
    offset: int = 0,
    limit: int = 25,
    timezone: str = "UTC",
    now: datetime | None = None,
) -> SearchPage:
    """Listed events (public, published, not over) matching ``criteria``, one page of them."""
    now = now or datetime.now(UTC)
    min_price = (
        sa.select(TicketType.event_id, sa.func.min(TicketType.price_minor).label("min_price"))
        .where(_offered_ticket_types())
        .group_by(TicketType.event_id)
        .subquery("min_price")
    )
    conditions: list[Any] = [
        Event.status.in_(LISTED_STATUSES),
        Event.visibility == "public",
        Event.ends_at >= now,
    ]
    columns: list[Any] = [Event, min_price.c.min_price]
    rank = None
    if criteria.text:
        query = sa.func.websearch_to_tsquery(sa.literal_column(f"'{TEXT_SEARCH_CONFIG}'::regconfig"), criteria.text)
        conditions.append(search_vector.op("@@")(query))
        rank = sa.func.ts_rank_cd(search_vector, query, 32)
    columns.append((rank if rank is not None else sa.null()).label("rank"))
    distance = None
    if criteria.latitude is not None and criteria.longitude is not None:
        distance = haversine_km(Event.latitude, Event.longitude, criteria.latitude, criteria.longitude)
        conditions += [Event.latitude.is_not(None), Event.longitude.is_not(None)]
        conditions.append(distance <= (criteria.radius_km or DEFAULT_RADIUS_KM))
    columns.append((distance if distance is not None else sa.null()).label("distance"))
    start, end = day_bounds(criteria, timezone)
    if start is not None:
        conditions.append(Event.ends_at >= start)
    if end is not None:
        conditions.append(Event.starts_at < end)
    if criteria.category:
        conditions.append(sa.func.lower(Event.category) == criteria.category.lower())
    if criteria.price_min is not None or criteria.price_max is not None or criteria.free_only:
        offered = [TicketType.event_id == Event.id, _offered_ticket_types()]
        if criteria.free_only:
            offered.append(TicketType.price_minor == 0)
        if criteria.price_min is not None:
            offered.append(TicketType.price_minor >= criteria.price_min)
        if criteria.price_max is not None:
            offered.append(TicketType.price_minor <= criteria.price_max)
        conditions.append(sa.exists().where(*offered))

    statement = sa.select(*columns).outerjoin(min_price, min_price.c.event_id == Event.id).where(*conditions)
    sort = criteria.effective_sort
    if sort == "relevance" and rank is not None:
        order: list[Any] = [rank.desc(), Event.starts_at]
    elif sort == "distance" and distance is not None:
        order = [distance, Event.starts_at]
    elif sort == "popularity":
        sold = _sold_counts()
        statement = statement.outerjoin(sold, sold.c.event_id == Event.id)
        order = [sa.func.coalesce(sold.c.sold, 0).desc(), Event.starts_at]
    else:
        order = [Event.starts_at]
    statement = statement.order_by(*order, Event.id)

    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(Event).where(*conditions)
    ) or 0
    rows = db.session.execute(statement.offset(offset).limit(limit)).all()
    hits = [
        EventHit(
            event=row[0],
            min_price_minor=row.min_price,
            rank=float(row.rank) if row.rank is not None else None,
            distance_km=float(row.distance) if row.distance is not None else None,
        )
        for row in rows
    ]
    return SearchPage(hits=hits, total=total)


def categories() -> list[str]:
    """Categories of the listed upcoming events, for the storefront's filter."""
    rows = db.session.scalars(
        sa.select(Event.category)
        .distinct()
        .where(
            Event.status.in_(LISTED_STATUSES), Event.visibility == "public",
            Event.ends_at >= datetime.now(UTC), Event.category.is_not(None),
        )
        .order_by(Event.category)
    )
    return [row for row in rows if row]
