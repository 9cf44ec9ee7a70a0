"""Event management: create, change, copy and schedule events, their ticket types and quotas, and
move events through their lifecycle.

Every function works in the current tenant and adds its audit entries (and outbox announcements)
to the caller's transaction; the caller commits. Refusals are :class:`ApiError` (4xx) with the
kernel's error codes, so the API and the organiser pages say the same thing.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core import audit, outbox
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.ticketing.models import (
    EVENT_STATUSES,
    Event,
    EventSeries,
    PriceTier,
    Quota,
    TicketType,
)
from plugins.ticketing.questions import copy_questions
from plugins.ticketing.sanitize import clean_description

SLUG_MAX = 100
# Beyond these, a date is a typing slip (or a probe), not an event anyone sells tickets for.
EARLIEST_YEAR = 1970
LATEST_YEAR = 2199
MAX_SERIES_DATES = 100

# Which status may follow which; "ended" and "cancelled" are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"published"}),
    "published": frozenset({"sales_closed", "postponed", "cancelled", "ended"}),
    "sales_closed": frozenset({"published", "postponed", "cancelled", "ended"}),
    "postponed": frozenset({"published", "cancelled"}),
    "ended": frozenset(),
    "cancelled": frozenset(),
}
assert set(TRANSITIONS) == set(EVENT_STATUSES)

EVENT_FIELDS = (
    "title", "description_html", "category", "tags", "venue_name", "venue_address", "latitude", "longitude",
    "online_url", "timezone", "starts_at", "ends_at", "visibility", "organizer_email", "refund_policy",
    "capacity", "cover_image_url", "buyer_refund_hours", "refund_fee_percent_bp",
)
TICKET_TYPE_FIELDS = (
    "name", "description", "kind", "price_minor", "tax_rate_bp", "tax_inclusive", "sales_start", "sales_end",
    "min_per_order", "max_per_order", "hidden", "addon_for_id", "position",
)


def invalid(code: str, message: str, details: dict[str, Any] | None = None) -> ApiError:
    return ApiError(422, code, message, details or {})


# --- Time --------------------------------------------------------------------------------------


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The time zone ``name``, or a 422 naming the field."""
    try:
        if name not in zoneinfo.available_timezones():
            raise KeyError(name)
        return zoneinfo.ZoneInfo(name)
    except (KeyError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise invalid(
            "unknown_timezone", _("'%(name)s' is not a known time zone, such as Europe/Berlin.", name=name),
            {"timezone": name},
        ) from None


def localize(value: datetime, tz: zoneinfo.ZoneInfo, field: str) -> datetime:
    """``value`` as an aware time: a wall-clock time is read in ``tz``, and one that never happens
    there (skipped by a daylight-saving change) is refused rather than silently moved."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise invalid("date_out_of_range", _("Dates must fall between the years %(first)d and %(last)d.",
                                             first=EARLIEST_YEAR, last=LATEST_YEAR), {field: value.isoformat()})
    if value.tzinfo is not None:
        return value
    aware = value.replace(tzinfo=tz)
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != value:
        raise invalid(
            "nonexistent_time",
            _("%(time)s does not exist in %(zone)s: the clocks skip it.", time=value.isoformat(" "), zone=tz.key),
            {field: value.isoformat()},
        )
    return aware


def _check_dates(event: Event) -> None:
    if event.ends_at < event.starts_at:
        raise invalid("ends_before_start", _("The event cannot end before it starts."),
                      {"starts_at": event.starts_at.isoformat(), "ends_at": event.ends_at.isoformat()})


# --- Events ------------------------------------------------------------------------------------


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:SLUG_MAX].strip("-")
    return slug or "event"


def unique_slug(text: str) -> str:
    base = slugify(text)
    slug = base
    while db.session.scalar(sa.select(Event.id).where(Event.slug == slug)) is not None:
        slug = f"{base[: SLUG_MAX - 7]}-{secrets.token_hex(3)}"
    return slug


def _insert(event: Event) -> None:
    """Add a new ``event``; if a concurrent request took its slug meanwhile, retry under a suffixed one."""
    for _attempt in range(5):
        try:
            with db.session.begin_nested():
                db.session.add(event)
                db.session.flush()
            return
        except sa.exc.IntegrityError:
            event.slug = f"{slugify(event.title)[: SLUG_MAX - 7]}-{secrets.token_hex(3)}"
    raise ApiError(409, "slug_taken", _("Please try again."))


def _apply_event_fields(event: Event, data: dict[str, Any]) -> dict[str, Any]:
    """Set the given fields on ``event``; returns what changed as ``{field: [before, after]}``."""
    tz = zone(data.get("timezone", event.timezone or "UTC"))
    changes: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        if name not in data:
            continue
        value = data[name]
        if name == "description_html":
            value = clean_description(value or "")
        elif name in ("starts_at", "ends_at"):
            value = localize(value, tz, name)
        elif name == "tags":
            value = sorted({tag.strip() for tag in value or [] if tag.strip()})
        before = getattr(event, name, None)
        if before != value:
            changes[name] = [before, value]
            setattr(event, name, value)
    if event.starts_at is None or event.ends_at is None:
        raise invalid("dates_required", _("An event needs a start and an end."))
    _check_dates(event)
    moved = "starts_at" in changes or "ends_at" in changes
    if event.status != "draft" and moved and event.ends_at <= datetime.now(UTC):
        raise invalid("ends_in_past", _("A published event cannot be moved into the past."))
    return changes


def create_event(data: dict[str, Any]) -> Event:
    event = Event(status="draft", slug=unique_slug(data["title"]), timezone=data.get("timezone", "UTC"),
                  tags=[], description_html="", refund_policy="")
    _apply_event_fields(event, data)
    _insert(event)
    audit.record("event.created", "event", event.id, {"title": event.title, "slug": event.slug})
    return event


def _flush_capacity_change() -> None:
    """Flush a change of a quota's size or holds, or an event's capacity.

    The inventory's triggers (migration tk0002) refuse to take away places that are reserved or
    sold; that is the organiser's mistake to hear about, not a server error.
    """
    try:
        db.session.flush()
    except sa.exc.IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != "inventory_places_in_use":
            raise
        raise ApiError(
            409, "places_in_use",
            _("Fewer places are free than you are taking away: the rest are reserved or sold."),
        ) from exc


def update_event(event: Event, data: dict[str, Any]) -> Event:
    if event.status in ("ended", "cancelled"):
        raise ApiError(409, "event_closed", _("An event that has ended or was cancelled can no longer be changed."),
                       {"status": event.status})
    changes = _apply_event_fields(event, data)
    if changes:
        _flush_capacity_change()
        audit.record("event.updated", "event", event.id, changes)
        if event.status != "draft":
            outbox.announce("ticketing.event_updated", _payload(event, changed=sorted(changes)))
    return event


def get_event(event_id: str, *, lock: bool = False) -> Event:
    query = sa.select(Event).where(Event.id == event_id)
    if lock:
        query = query.with_for_update()
    event = db.session.scalar(query)
    if event is None:
        raise ApiError(404, "event_not_found", _("There is no such event."), {"event_id": event_id})
    return event


def _listing(status: str | None, starts_from: date | None, starts_to: date | None, tz: str) -> sa.Select[Any]:
    query = sa.select(Event)
    if status:
        query = query.where(Event.status == status)
    local = zoneinfo.ZoneInfo(tz)
    if starts_from:
        query = query.where(Event.starts_at >= datetime.combine(starts_from, time.min, local))
    if starts_to and starts_to < date.max:
        query = query.where(Event.starts_at < datetime.combine(starts_to + timedelta(days=1), time.min, local))
    return query


def list_events(status: str | None = None, starts_from: date | None = None, starts_to: date | None = None,
                *, tz: str = "UTC", offset: int = 0, limit: int | None = None) -> list[Event]:
    """Events (drafts included) by start, then id, so pages are stable."""
    query = _listing(status, starts_from, starts_to, tz).order_by(Event.starts_at, Event.id)
    return list(db.session.scalars(query.offset(offset).limit(limit)))


def count_events(status: str | None = None, starts_from: date | None = None, starts_to: date | None = None,
                 *, tz: str = "UTC") -> int:
    subquery = _listing(status, starts_from, starts_to, tz).subquery()
    return db.session.scalar(sa.select(sa.func.count()).select_from(subquery)) or 0


def delete_event(event: Event) -> None:
    """Delete a draft and its ticket types and quotas; one that somehow has orders is refused."""
    if event.status != "draft":
        raise ApiError(409, "not_a_draft", _("Only drafts can be deleted; cancel a published event instead."),
                       {"status": event.status})
    try:
        with db.session.begin_nested():
            db.session.delete(event)
    except sa.exc.IntegrityError:
        # Orders refer to their event; a draft with orders (a test sale, say) must be kept.
        raise ApiError(409, "event_has_orders", _("This draft has orders and cannot be deleted."),
                       {"event_id": event.id}) from None
    audit.record("event.deleted", "event", event.id, {"title": event.title, "slug": event.slug})


def _shift(value: datetime | None, delta: timedelta) -> datetime | None:
    return None if value is None else value + delta


def copy_event(source: Event, *, title: str | None = None, starts_at: datetime | None = None,
               series: EventSeries | None = None) -> Event:
    """A draft with the same details, ticket types (with tiers and add-ons) and quotas, under a new slug.

    With ``starts_at`` the copy moves there, keeping the duration; its sales windows and early-bird
    dates move with it.
    """
    delta = timedelta(0)
    if starts_at is not None:
        delta = localize(starts_at, zone(source.timezone), "starts_at") - source.starts_at
    copy = Event(status="draft", slug=unique_slug(title or source.title), series_id=series.id if series else None)
    for name in EVENT_FIELDS:
        setattr(copy, name, getattr(source, name))
    copy.tags = list(source.tags or [])
    if title:
        copy.title = title
    copy.starts_at = source.starts_at + delta
    copy.ends_at = source.ends_at + delta
    _insert(copy)
    type_ids: dict[str, str] = {}
    for ticket_type in source.ticket_types:
        twin = TicketType(event_id=copy.id)
        for name in TICKET_TYPE_FIELDS:
            setattr(twin, name, getattr(ticket_type, name))
        twin.addon_for_id = None
        twin.sales_start = _shift(ticket_type.sales_start, delta)
        twin.sales_end = _shift(ticket_type.sales_end, delta)
        twin.price_tiers = [
            PriceTier(price_minor=tier.price_minor, until=_shift(tier.until, delta), up_to_sold=tier.up_to_sold,
                      position=tier.position)
            for tier in ticket_type.price_tiers
        ]
        db.session.add(twin)
        db.session.flush()
        type_ids[ticket_type.id] = twin.id
    for ticket_type in source.ticket_types:
        if ticket_type.addon_for_id:
            twin_of = db.session.get(TicketType, type_ids[ticket_type.id])
            assert twin_of is not None
            twin_of.addon_for_id = type_ids.get(ticket_type.addon_for_id)
    for quota in source.quotas:
        members = [db.session.get(TicketType, type_ids[member.id]) for member in quota.ticket_types]
        db.session.add(Quota(event_id=copy.id, name=quota.name, size=quota.size, held=quota.held,
                             ticket_types=[member for member in members if member is not None]))
    copy_questions(source, copy, type_ids)
    db.session.flush()
    db.session.refresh(copy)
    audit.record("event.copied", "event", copy.id, {"from": source.id, "slug": copy.slug})
    return copy


def create_series(template: Event, starts: Iterable[datetime], title: str | None = None) -> tuple[EventSeries,
                                                                                                 list[Event]]:
    """A series of dates copied from ``template``: each an event of its own, with its own quotas."""
    dates = list(starts)
    if not 1 <= len(dates) <= MAX_SERIES_DATES:
        raise invalid("bad_series_size", _("A series has between 1 and %(max)d dates.", max=MAX_SERIES_DATES),
                      {"dates": len(dates)})
    tz = zone(template.timezone)
    localized = [localize(start, tz, "starts") for start in dates]
    if len(set(localized)) != len(localized):
        raise invalid("duplicate_dates", _("The same date is listed twice."))
    series = EventSeries(title=title or template.title)
    db.session.add(series)
    db.session.flush()
    events = [copy_event(template, starts_at=start, series=series) for start in sorted(localized)]
    audit.record("event_series.created", "event_series", series.id,
                 {"template": template.id, "events": [event.id for event in events]})
    return series, events


# --- Lifecycle ---------------------------------------------------------------------------------


def _payload(event: Event, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": event.id, "slug": event.slug, "title": event.title, "status": event.status,
        "visibility": event.visibility, "starts_at": event.starts_at.isoformat(), **extra,
    }


def allowed_transitions(event: Event) -> list[str]:
    return [status for status in EVENT_STATUSES if status in TRANSITIONS[event.status]]


def transition(event: Event, to: str) -> Event:
    """Move ``event`` to status ``to`` if the lifecycle allows it; audited and announced as
    ``ticketing.event_<to>`` through the outbox, so refunds, mail and listings follow. Cancelling
    queues the refund of every order (:mod:`plugins.ticketing.event_cancellation`) once the caller commits."""
    before = event.status
    if to not in TRANSITIONS.get(before, frozenset()):
        raise ApiError(409, "transition_not_allowed",
                       _("A %(before)s event cannot become %(after)s.", before=status_label(before),
                         after=status_label(to)),
                       {"from": before, "to": to, "allowed": allowed_transitions(event)})
    if to == "published":
        problems = publish_problems(event)
        if problems:
            raise ApiError(409, "not_publishable", " ".join(problems.values()),
                           {"from": before, "problems": sorted(problems)})
        if event.published_at is None:
            event.published_at = datetime.now(UTC)
    event.status = to
    db.session.flush()
    audit.record("event.status_changed", "event", event.id, {"status": [before, to]})
    outbox.announce(f"ticketing.event_{to}", _payload(event, previous_status=before))
    if to == "cancelled":
        # Imported here: refunds build on checkout, which builds on this module's models.
        from plugins.ticketing.event_cancellation import start_refunds

        start_refunds(event)
    return event


def publish_problems(event: Event) -> dict[str, str]:
    """What keeps ``event`` from going on sale, by code; empty when it may be published."""
    problems: dict[str, str] = {}
    if not any(ticket_type.addon_for_id is None for ticket_type in event.ticket_types):
        problems["no_ticket_types"] = _("Add at least one ticket type before publishing.")
    if event.ends_at <= datetime.now(UTC):
        problems["ends_in_past"] = _("The event has already ended: move it to a future date first.")
    return problems


def status_label(status: str) -> str:
    return {
        "draft": _("draft"), "published": _("published"), "sales_closed": _("sales closed"),
        "ended": _("ended"), "cancelled": _("cancelled"), "postponed": _("postponed"),
    }.get(status, status)


# --- Ticket types ------------------------------------------------------------------------------


def get_ticket_type(event: Event, ticket_type_id: str) -> TicketType:
    found = next((item for item in event.ticket_types if item.id == ticket_type_id), None)
    if found is None:
        raise ApiError(404, "ticket_type_not_found", _("This event has no such ticket type."),
                       {"ticket_type_id": ticket_type_id})
    return found


def _quotas_of_event(event: Event, quota_ids: Iterable[str]) -> list[Quota]:
    wanted = list(dict.fromkeys(quota_ids))
    own = {quota.id: quota for quota in event.quotas}
    foreign = [quota_id for quota_id in wanted if quota_id not in own]
    if foreign:
        raise invalid("unknown_quota", _("Quotas must belong to the same event."), {"quota_ids": foreign})
    return [own[quota_id] for quota_id in wanted]


def _types_of_event(event: Event, ticket_type_ids: Iterable[str]) -> list[TicketType]:
    wanted = list(dict.fromkeys(ticket_type_ids))
    own = {ticket_type.id: ticket_type for ticket_type in event.ticket_types}
    foreign = [type_id for type_id in wanted if type_id not in own]
    if foreign:
        raise invalid("unknown_ticket_type", _("Ticket types must belong to the same event."),
                      {"ticket_type_ids": foreign})
    return [own[type_id] for type_id in wanted]


def _check_ticket_type(ticket_type: TicketType, event: Event) -> None:
    if ticket_type.kind == "free" and ticket_type.price_minor != 0:
        raise invalid("free_with_price", _("A free ticket has no price."), {"price_minor": ticket_type.price_minor})
    if ticket_type.kind == "paid" and ticket_type.price_minor <= 0:
        raise invalid("paid_without_price", _("A paid ticket needs a price above zero."),
                      {"price_minor": ticket_type.price_minor})
    if ticket_type.min_per_order > ticket_type.max_per_order:
        raise invalid("min_above_max", _("The minimum per order cannot be above the maximum."),
                      {"min_per_order": ticket_type.min_per_order, "max_per_order": ticket_type.max_per_order})
    if ticket_type.sales_start and ticket_type.sales_end and ticket_type.sales_end <= ticket_type.sales_start:
        raise invalid("sales_end_before_start", _("Sales cannot end before they start."))
    if ticket_type.price_tiers and ticket_type.kind != "paid":
        raise invalid("tiers_need_paid", _("Only paid tickets have price tiers."))
    if ticket_type.addon_for_id is not None:
        target = next((item for item in event.ticket_types if item.id == ticket_type.addon_for_id), None)
        if target is None or target is ticket_type or target.addon_for_id is not None:
            raise invalid("bad_addon_for", _("An add-on belongs to a ticket type of the same event."),
                          {"addon_for_id": ticket_type.addon_for_id})


def _tiers(items: list[dict[str, Any]], tz: zoneinfo.ZoneInfo) -> list[PriceTier]:
    tiers = []
    for position, item in enumerate(items):
        until, up_to_sold = item.get("until"), item.get("up_to_sold")
        if (until is None) == (up_to_sold is None):
            raise invalid("bad_tier", _("A price tier applies either until a date or up to a number sold."),
                          {"price_tiers": position})
        tiers.append(PriceTier(price_minor=item["price_minor"], up_to_sold=up_to_sold, position=position,
                               until=None if until is None else localize(until, tz, "until")))
    return tiers


def _editable(event: Event) -> None:
    if event.status in ("ended", "cancelled"):
        raise ApiError(409, "event_closed", _("An event that has ended or was cancelled can no longer be changed."),
                       {"status": event.status})


def save_ticket_type(event: Event, data: dict[str, Any], ticket_type: TicketType | None = None) -> TicketType:
    """Create a ticket type of ``event`` (or change ``ticket_type``) with its tiers and quotas."""
    _editable(event)
    tz = zone(event.timezone)
    created = ticket_type is None
    if ticket_type is None:
        ticket_type = TicketType(event_id=event.id, position=len(event.ticket_types))
        event.ticket_types.append(ticket_type)
    changes: dict[str, Any] = {}
    for name in TICKET_TYPE_FIELDS:
        if name in data:
            value = data[name]
            if name in ("sales_start", "sales_end") and value is not None:
                value = localize(value, tz, name)
            if getattr(ticket_type, name, None) != value:
                changes[name] = [getattr(ticket_type, name, None), value]
                setattr(ticket_type, name, value)
    if ticket_type.kind == "free" and "price_minor" not in data:
        ticket_type.price_minor = 0
    if "price_tiers" in data:
        ticket_type.price_tiers = _tiers(data["price_tiers"], tz)
        changes["price_tiers"] = [[tier.price_minor, tier.until, tier.up_to_sold] for tier in ticket_type.price_tiers]
    for name, default in (("min_per_order", 1), ("max_per_order", 10), ("price_minor", 0), ("tax_rate_bp", 0)):
        if getattr(ticket_type, name) is None:
            setattr(ticket_type, name, default)
    _check_ticket_type(ticket_type, event)
    if "quota_ids" in data:
        chosen = _quotas_of_event(event, data["quota_ids"])
        for quota in event.quotas:
            if quota in chosen and ticket_type not in quota.ticket_types:
                quota.ticket_types.append(ticket_type)
            elif quota not in chosen and ticket_type in quota.ticket_types:
                quota.ticket_types.remove(ticket_type)
        changes["quota_ids"] = [quota.id for quota in chosen]
    db.session.flush()
    action = "ticket_type.created" if created else "ticket_type.updated"
    audit.record(action, "ticket_type", ticket_type.id, {"event_id": event.id, **changes})
    if event.status != "draft":
        # Prices and offers of an event on sale changed: listings and caches follow.
        outbox.announce(f"ticketing.{action.replace('.', '_')}",
                        {"event_id": event.id, "ticket_type_id": ticket_type.id, "changed": sorted(changes)})
    return ticket_type


def delete_ticket_type(event: Event, ticket_type: TicketType) -> None:
    _editable(event)
    if event.status != "draft":
        raise ApiError(409, "event_not_draft",
                       _("Ticket types of an event on sale cannot be deleted; hide them instead."),
                       {"status": event.status})
    audit.record("ticket_type.deleted", "ticket_type", ticket_type.id, {"event_id": event.id, "name": ticket_type.name})
    event.ticket_types.remove(ticket_type)
    db.session.flush()


def quota_ids_of(ticket_type: TicketType) -> list[str]:
    return [quota.id for quota in ticket_type.event.quotas if ticket_type in quota.ticket_types]


# --- Quotas ------------------------------------------------------------------------------------


def get_quota(event: Event, quota_id: str) -> Quota:
    found = next((quota for quota in event.quotas if quota.id == quota_id), None)
    if found is None:
        raise ApiError(404, "quota_not_found", _("This event has no such quota."), {"quota_id": quota_id})
    return found


def save_quota(event: Event, data: dict[str, Any], quota: Quota | None = None) -> Quota:
    """Create a quota of ``event`` (or change ``quota``): its size, holds and the ticket types drawing on it."""
    _editable(event)
    created = quota is None
    if quota is None:
        quota = Quota(event_id=event.id, held=0)
        event.quotas.append(quota)
    changes: dict[str, Any] = {}
    for name in ("name", "size", "held"):
        if name in data and getattr(quota, name, None) != data[name]:
            changes[name] = [getattr(quota, name, None), data[name]]
            setattr(quota, name, data[name])
    if quota.held is None:
        quota.held = 0
    if quota.held > quota.size:
        raise invalid("held_above_size", _("A quota cannot hold back more places than it has."),
                      {"size": quota.size, "held": quota.held})
    if "ticket_type_ids" in data:
        quota.ticket_types = _types_of_event(event, data["ticket_type_ids"])
        changes["ticket_type_ids"] = [item.id for item in quota.ticket_types]
    _flush_capacity_change()
    audit.record("quota.created" if created else "quota.updated", "quota", quota.id, {"event_id": event.id, **changes})
    return quota


def delete_quota(event: Event, quota: Quota) -> None:
    _editable(event)
    if event.status != "draft":
        raise ApiError(409, "event_not_draft", _("Quotas of an event on sale cannot be deleted; resize them instead."),
                       {"status": event.status})
    audit.record("quota.deleted", "quota", quota.id, {"event_id": event.id, "name": quota.name})
    event.quotas.remove(quota)
    db.session.flush()
