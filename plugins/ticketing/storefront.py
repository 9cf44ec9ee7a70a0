"""The tenant's storefront: the home page of upcoming events, search, event pages, calendar files.

Listed (home page, search, public API): public, published events that have not ended. Unlisted
events are reachable by their link only; drafts and private events do not exist for visitors (404).
Times are shown in the event's own time zone; prices in the tenant's currency.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any, cast
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import nh3
import sqlalchemy as sa
from babel.dates import format_date, format_time
from babel.numbers import get_currency_precision
from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import format_currency, get_locale
from flask_babel import gettext as _
from markupsafe import Markup

from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant
from plugins.ticketing.models import Event, TicketType
from plugins.ticketing.sanitize import clean_description
from plugins.ticketing.search import EventSearch, SearchError, categories, parse_search, search_events

blueprint = Blueprint("storefront", __name__, template_folder="templates")

PAGE_SIZE = 12
# Visitors with the link may see these; drafts are unfinished work, private events are not for sale.
VISIBLE_VISIBILITIES = ("public", "unlisted")
HIDDEN_STATUSES = ("draft",)
ON_SALE = "on_sale"
UNLOCK_CODE_MAX = 100
# Whole amounts with an optional decimal part: no signs, exponents, spaces or other digits.
AMOUNT = re.compile(r"[0-9]{1,15}(?:[.,]([0-9]+))?")


# --- Looking events up ---------------------------------------------------------------------------


def visible_event(slug: str) -> Event | None:
    """The event at ``/events/<slug>`` as a visitor may see it, or None (a 404)."""
    return db.session.scalar(
        sa.select(Event).where(
            Event.slug == slug,
            Event.visibility.in_(VISIBLE_VISIBILITIES),
            Event.status.not_in(HIDDEN_STATUSES),
        )
    )


def _event_or_404(slug: str) -> Event:
    event = visible_event(slug)
    if event is None:
        abort(404)
    return event


# --- Presenting an event -------------------------------------------------------------------------


def safe_zone(name: str) -> Any:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def event_zone(event: Event) -> Any:
    return safe_zone(event.timezone)


def format_money(minor: int, currency: str) -> str:
    exponent = get_currency_precision(currency)
    return str(format_currency(Decimal(minor).scaleb(-exponent), currency))


def money_amount(minor: int, currency: str) -> str:
    """The plain decimal amount (``12.50``), as schema.org and feeds expect it."""
    exponent = get_currency_precision(currency)
    return f"{Decimal(minor).scaleb(-exponent):.{exponent}f}"


def when(event: Event) -> str:
    """Start and end in the event's own time zone, worded for the visitor's language."""
    zone = event_zone(event)
    start, end = event.starts_at.astimezone(zone), event.ends_at.astimezone(zone)
    locale = str(get_locale() or "en")
    start_day = format_date(start, "full", locale=locale)
    start_time = format_time(start, "short", locale=locale)
    end_time = format_time(end, "short", locale=locale)
    zone_name = start.tzname() or event.timezone
    if start.date() == end.date():
        return f"{start_day}, {start_time}\u2013{end_time} ({zone_name})"
    end_day = format_date(end, "full", locale=locale)
    return f"{start_day}, {start_time} \u2013 {end_day}, {end_time} ({zone_name})"


def short_when(event: Event) -> str:
    zone = event_zone(event)
    start = event.starts_at.astimezone(zone)
    locale = str(get_locale() or "en")
    return f"{format_date(start, 'medium', locale=locale)}, {format_time(start, 'short', locale=locale)}"


@dataclass
class Offer:
    """A ticket type as the buyer sees it: its current price and whether it can be chosen now."""

    ticket_type: TicketType
    price_minor: int
    price_label: str
    state: str
    state_label: str
    # The most a buyer can choose at once: the per-order limit, or fewer when fewer are left.
    max_quantity: int = 0

    @property
    def on_sale(self) -> bool:
        return self.state == ON_SALE

    @property
    def pay_what_you_want(self) -> bool:
        return self.ticket_type.kind == "pay_what_you_want"


def current_price(ticket_type: TicketType, now: datetime) -> int:
    """The price before any checkout adjustments: the first date tier still running, else the base price.

    Tiers by quantity sold depend on live sales and are priced at checkout.
    """
    for tier in ticket_type.price_tiers:
        if tier.up_to_sold is None and tier.until is not None and tier.until > now:
            return tier.price_minor
    return ticket_type.price_minor


def _state(event: Event, ticket_type: TicketType, now: datetime, remaining: int) -> str:
    if event.status != "published":
        return "unavailable"
    if ticket_type.sales_start is not None and ticket_type.sales_start > now:
        return "not_started"
    if (ticket_type.sales_end is not None and ticket_type.sales_end <= now) or event.ends_at <= now:
        return "ended"
    if remaining <= 0:
        return "sold_out"
    return ON_SALE


def state_label(state: str, ticket_type: TicketType, event: Event) -> str:
    if state == "not_started" and ticket_type.sales_start is not None:
        zone = event_zone(event)
        start = ticket_type.sales_start.astimezone(zone)
        locale = str(get_locale() or "en")
        return _("On sale from %(when)s", when=f"{format_date(start, 'medium', locale=locale)}, "
                 f"{format_time(start, 'short', locale=locale)}")
    labels = {
        ON_SALE: _("On sale"),
        "ended": _("Sales ended"),
        "sold_out": _("Sold out"),
        "unavailable": _("Not on sale"),
    }
    return labels.get(state, _("Not on sale"))


def offers(
    event: Event, currency: str, now: datetime | None = None, unlocked: frozenset[str] = frozenset()
) -> list[Offer]:
    """The ticket types a buyer may pick on their own (not add-ons; hidden ones only when ``unlocked``),
    as they stand now."""
    from plugins.ticketing.inventory import availability

    now = now or datetime.now(UTC)
    remaining = availability(event.id)
    result = []
    for ticket_type in event.ticket_types:
        if (ticket_type.hidden and ticket_type.id not in unlocked) or ticket_type.addon_for_id is not None:
            continue
        price = 0 if ticket_type.kind == "free" else current_price(ticket_type, now)
        if ticket_type.kind == "free" or (price == 0 and ticket_type.kind != "pay_what_you_want"):
            label = _("Free")
        elif ticket_type.kind == "pay_what_you_want":
            label = _("Pay what you want, from %(price)s", price=format_money(price, currency))
        else:
            label = format_money(price, currency)
        left = remaining.get(ticket_type.id, 0)
        state = _state(event, ticket_type, now, left)
        result.append(Offer(ticket_type, price, label, state, state_label(state, ticket_type, event),
                            max(0, min(ticket_type.max_per_order, left))))
    return result


def event_url(event: Event) -> str:
    return url_for("storefront.event_page", slug=event.slug, _external=True)


def plain_text(html: str) -> str:
    """The words of an HTML fragment, tags dropped and entities decoded, on one line."""
    return " ".join(unescape(nh3.clean(html or "", tags=set(), clean_content_tags={"script", "style"})).split())


SCHEMA_STATUS = {
    "cancelled": "https://schema.org/EventCancelled",
    "postponed": "https://schema.org/EventPostponed",
}
SCHEMA_AVAILABILITY = {
    ON_SALE: "https://schema.org/InStock",
    "sold_out": "https://schema.org/SoldOut",
    "not_started": "https://schema.org/PreOrder",
}


def json_ld(event: Event, event_offers: list[Offer], currency: str, site_name: str) -> dict[str, Any]:
    """The event as schema.org ``Event`` structured data, for search engines."""
    url = event_url(event)
    location: list[dict[str, Any]] = []
    if event.venue_name or event.venue_address:
        place: dict[str, Any] = {"@type": "Place", "name": event.venue_name or event.venue_address}
        if event.venue_address:
            place["address"] = event.venue_address
        if event.latitude is not None and event.longitude is not None:
            place["geo"] = {"@type": "GeoCoordinates", "latitude": float(event.latitude),
                            "longitude": float(event.longitude)}
        location.append(place)
    if event.online_url:
        location.append({"@type": "VirtualLocation", "url": url})
    mode = "Mixed" if len(location) == 2 else ("Online" if event.online_url else "Offline")
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Event",
        "name": event.title,
        "url": url,
        "startDate": event.starts_at.astimezone(event_zone(event)).isoformat(),
        "endDate": event.ends_at.astimezone(event_zone(event)).isoformat(),
        "eventStatus": SCHEMA_STATUS.get(event.status, "https://schema.org/EventScheduled"),
        "eventAttendanceMode": f"https://schema.org/{mode}EventAttendanceMode",
        "description": plain_text(event.description_html)[:5000],
        "organizer": {"@type": "Organization", "name": site_name, "url": url_for("kernel_pages.home", _external=True)},
        "offers": [
            {
                "@type": "Offer",
                "name": offer.ticket_type.name,
                "price": money_amount(offer.price_minor, currency),
                "priceCurrency": currency,
                "availability": SCHEMA_AVAILABILITY.get(offer.state, "https://schema.org/Discontinued"),
                "url": url,
                **({"validFrom": offer.ticket_type.sales_start.isoformat()} if offer.ticket_type.sales_start else {}),
            }
            for offer in event_offers
        ],
    }
    if location:
        data["location"] = location[0] if len(location) == 1 else location
    if event.cover_image_url and event.cover_image_url.startswith(("https://", "http://")):
        data["image"] = [event.cover_image_url]
    return data


# --- Calendar files (RFC 5545) -------------------------------------------------------------------


def ics_escape(text: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as ``\\n`` (RFC 5545 3.3.11)."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def ics_fold(line: str) -> str:
    """Fold a content line at 75 octets, never inside a UTF-8 character (RFC 5545 3.1)."""
    parts: list[str] = []
    current, size, limit = "", 0, 75
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, 74  # continuation lines start with one space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def ics_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def event_ics(event: Event, *, host: str, now: datetime | None = None) -> str:
    """A one-event calendar, with times in UTC so that no VTIMEZONE is needed."""
    url = event_url(event)
    description = plain_text(event.description_html)
    description = f"{description}\n\n{url}" if description else url
    location = ", ".join(part for part in (event.venue_name, event.venue_address) if part)
    status = {"cancelled": "CANCELLED", "postponed": "TENTATIVE"}.get(event.status, "CONFIRMED")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Bilten//Ticketing//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{event.id}@{host}",
        f"DTSTAMP:{ics_time(now or datetime.now(UTC))}",
        f"DTSTART:{ics_time(event.starts_at)}",
        f"DTEND:{ics_time(event.ends_at)}",
        f"SUMMARY:{ics_escape(event.title)}",
        f"DESCRIPTION:{ics_escape(description)}",
        f"URL:{url}",
        f"STATUS:{status}",
    ]
    if location:
        lines.append(f"LOCATION:{ics_escape(location)}")
    elif event.online_url:
        lines.append(f"LOCATION:{ics_escape(_('Online'))}")
    if event.latitude is not None and event.longitude is not None:
        lines.append(f"GEO:{float(event.latitude):.6f};{float(event.longitude):.6f}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "".join(ics_fold(line) + "\r\n" for line in lines)


# --- Pages ---------------------------------------------------------------------------------------


def _page_number() -> int:
    raw = request.args.get("page", "1")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        abort(400, description=_("The page number must be a whole number from 1."))
    return int(raw)


def _listing(criteria: EventSearch, page: int) -> dict[str, Any]:
    settings = general_settings()
    result = search_events(
        criteria, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE, timezone=settings.timezone
    )
    pages = max(1, -(-result.total // PAGE_SIZE))
    args = {key: value for key, value in request.args.items() if key != "page" and value}

    def page_url(number: int) -> str:
        return f"{request.path}?{urlencode({**args, 'page': number})}"

    return {
        "hits": result.hits,
        "total": result.total,
        "page": page,
        "pages": pages,
        "previous_url": page_url(page - 1) if page > 1 else None,
        "next_url": page_url(page + 1) if page < pages else None,
        "currency": settings.currency,
        "format_money": format_money,
        "short_when": short_when,
    }


def home() -> str:
    """The tenant's home page: upcoming events, soonest first (called by the ``tenant_home_page`` hook)."""
    page = _page_number()
    return render_template(
        "ticketing/storefront/home.html", criteria=EventSearch(), categories=categories(),
        **_listing(EventSearch(), page),
    )


@blueprint.get("/search")
def search() -> Any:
    settings = general_settings()
    page = _page_number()
    try:
        criteria = parse_search(request.args, currency=settings.currency, prices_in_minor_units=False)
    except SearchError as exc:
        return render_template(
            "ticketing/storefront/search.html", criteria=None, errors=exc.details, categories=categories(),
            hits=[], total=0, args=request.args,
        ), 400
    return render_template(
        "ticketing/storefront/search.html", criteria=criteria, errors={}, categories=categories(),
        args=request.args, **_listing(criteria, page),
    )


def _event_context(event: Event, unlocking: Unlocking | None = None) -> dict[str, Any]:
    settings = general_settings()
    unlocking = unlocking or Unlocking()
    event_offers = offers(event, settings.currency, unlocked=unlocking.ticket_type_ids)
    public_offers = [offer for offer in event_offers if not offer.ticket_type.hidden]
    site_name = settings.display_name or current_tenant().name
    return {
        "event": event,
        "offers": event_offers,
        "when": when(event),
        "description": Markup(clean_description(event.description_html or "")),  # noqa: S704 - cleaned
        "summary": plain_text(event.description_html)[:300],
        "json_ld": json_ld(event, public_offers, settings.currency, site_name),
        "event_url": event_url(event),
        "on_sale": any(offer.on_sale for offer in event_offers),
        "unlock_code": unlocking.code,
        "currency": settings.currency,
        "format_money": format_money,
    }


# --- Unlock codes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unlocking:
    """A code a visitor typed and the hidden ticket types of the event it unlocks."""

    code: str = ""
    ticket_type_ids: frozenset[str] = frozenset()
    error: str | None = None


def unlock(event: Event, raw: str | None) -> Unlocking:
    """Ask the plugins (hook ``unlock_ticket_types``) which hidden types of ``event`` the code opens."""
    code = (raw or "").strip()
    hidden = {ticket_type.id for ticket_type in event.ticket_types if ticket_type.hidden}
    if not code or not hidden:
        return Unlocking()  # nothing to unlock: the page offers no code field either
    unlocked: set[str] = set()
    if len(code) <= UNLOCK_CODE_MAX:
        caller = kernel().plugins.hook_for_tenant("unlock_ticket_types")
        unlocked = {str(type_id) for ids in caller(event=event, code=code) for type_id in ids or ()} & hidden
    if not unlocked:
        return Unlocking(error=_("This code does not unlock any tickets for this event. Check it and try again."))
    return Unlocking(code, frozenset(unlocked))


def _unlock_errors(unlocking: Unlocking) -> dict[str, str]:
    return {"code": unlocking.error} if unlocking.error else {}


@blueprint.get("/events/<slug>")
def event_page(slug: str) -> Any:
    event = _event_or_404(slug)
    unlocking = unlock(event, request.args.get("code"))
    response = Response(render_template("ticketing/storefront/event.html", errors=_unlock_errors(unlocking),
                                        chosen={}, **_event_context(event, unlocking)))
    if event.visibility == "unlisted":
        # Reachable by link, but not meant to turn up in search engines.
        response.headers["X-Robots-Tag"] = "noindex"
    if "code" in request.args:
        # What a code unlocks is for whoever has it: no shared caches, no search engines.
        response.headers["Cache-Control"] = "private, no-store"
        response.headers["X-Robots-Tag"] = "noindex"
    return response


@blueprint.get("/events/<slug>.ics")
def event_calendar(slug: str) -> Response:
    event = _event_or_404(slug)
    body = event_ics(event, host=current_tenant().primary_domain)
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Type"] = "text/calendar; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{event.slug}.ics"'
    return response


@blueprint.get("/events/<slug>/widget")
def event_widget(slug: str) -> Response:
    """A small page an organiser embeds in their own site with an ``<iframe>``."""
    event = _event_or_404(slug)
    response = Response(render_template("ticketing/storefront/widget.html", **_event_context(event)))
    response.headers["Content-Security-Policy"] = "frame-ancestors *"
    return response


def parse_quantities(event: Event, form: Any, event_offers: list[Offer]) -> tuple[dict[str, int], dict[str, str]]:
    """Quantities chosen per ticket type, and an error per field that is not acceptable."""
    chosen: dict[str, int] = {}
    errors: dict[str, str] = {}
    by_id = {offer.ticket_type.id: offer for offer in event_offers}
    for key in form:
        if key.startswith("qty-") and key[4:] not in by_id:
            errors["form"] = _("One of the tickets chosen is not offered for this event.")
    for ticket_id, offer in by_id.items():
        raw = (form.get(f"qty-{ticket_id}") or "0").strip()
        if not raw.isdigit():
            errors[ticket_id] = _("Choose a whole number of tickets.")
            continue
        quantity = int(raw)
        if quantity == 0:
            continue
        ticket_type = offer.ticket_type
        if not offer.on_sale:
            errors[ticket_id] = _("These tickets are not on sale.")
        elif quantity > ticket_type.max_per_order:
            errors[ticket_id] = _("At most %(count)d per order.", count=ticket_type.max_per_order)
        elif quantity < ticket_type.min_per_order:
            errors[ticket_id] = _("At least %(count)d per order.", count=ticket_type.min_per_order)
        else:
            chosen[ticket_id] = quantity
    if not chosen and not errors:
        errors["form"] = _("Choose at least one ticket.")
    return chosen, errors


def parse_amount(raw: str, currency: str) -> int | None:
    """An amount typed in major units ("12.50", "12,5") as exact minor units, or None when it is not
    a plain amount: signs, exponents and more decimals than the currency has are refused."""
    match = AMOUNT.fullmatch(raw.strip())
    exponent = get_currency_precision(currency)
    if match is None or len(match.group(1) or "") > exponent:
        return None
    return int(Decimal(match.group(0).replace(",", ".")).scaleb(exponent))


def offered_amounts(
    form: Any, event_offers: list[Offer], chosen: dict[str, int], currency: str
) -> tuple[dict[str, int], dict[str, str]]:
    """What the buyer offers per pay-what-you-want ticket chosen (empty: the minimum), and errors by field."""
    from plugins.ticketing.pricing import MAX_PRICE_MINOR

    amounts: dict[str, int] = {}
    errors: dict[str, str] = {}
    for offer in event_offers:
        type_id = offer.ticket_type.id
        raw = (form.get(f"amount-{type_id}") or "").strip()
        if not offer.pay_what_you_want or type_id not in chosen or not raw:
            continue
        amount = parse_amount(raw, currency)
        if amount is None or amount > MAX_PRICE_MINOR:
            errors[f"amount-{type_id}"] = _("Enter an amount in %(currency)s, such as %(example)s.",
                                            currency=currency, example=money_amount(offer.price_minor, currency))
        elif amount < offer.price_minor:
            errors[f"amount-{type_id}"] = _("Pay at least %(price)s.", price=format_money(offer.price_minor, currency))
        else:
            amounts[type_id] = amount
    return amounts, errors


@blueprint.post("/events/<slug>/tickets")
def choose_tickets(slug: str) -> Any:
    """Ticket selection: reserve the chosen tickets, then go to the checkout page and its countdown."""
    from plugins.ticketing.reservations import Item, create_reservation

    event = _event_or_404(slug)
    unlocking = unlock(event, request.form.get("unlock_code"))
    context = _event_context(event, unlocking)
    chosen, errors = parse_quantities(event, request.form, context["offers"])
    amounts, amount_errors = offered_amounts(request.form, context["offers"], chosen, context["currency"])
    errors = {**errors, **amount_errors, **_unlock_errors(unlocking)}
    if errors:
        return render_template("ticketing/storefront/event.html", errors=errors, chosen=request.form,
                               **context), 400
    items = [Item(type_id, quantity, amounts.get(type_id)) for type_id, quantity in chosen.items()]
    try:
        reservation = create_reservation(items, unlocking.code or None)
    except ApiError as exc:
        db.session.rollback()
        context = _event_context(event, unlocking)  # what is left now, for the buyer to choose again
        return render_template(
            "ticketing/storefront/event.html", chosen=request.form, **context,
            errors={"form": exc.description or _("These tickets are not available.")},
        ), exc.code or 400
    return redirect(url_for("storefront.checkout", reservation_id=reservation.id), 303)


def _checkout_context(reservation: Any) -> dict[str, Any]:
    from plugins.ticketing.checkout_form import answer_field, order_questions, ticket_fields
    from plugins.ticketing.questions import questions_of

    event = db.session.get(Event, reservation.event_id)
    assert event is not None
    currency = general_settings().currency
    now = cast(datetime, db.session.scalar(sa.select(sa.func.now())))
    questions = questions_of(event.id)
    return {
        "event": event,
        "reservation": reservation,
        "lines": [
            {"name": line.ticket_type.name, "quantity": line.quantity,
             "unit": format_money(line.unit_price_minor, currency),
             "total": format_money(line.unit_price_minor * line.quantity, currency)}
            for line in reservation.lines
        ],
        "total": format_money(reservation.total_minor, currency),
        "seconds_left": max(0, int((reservation.expires_at - now).total_seconds())),
        "expires_at": reservation.expires_at,
        "expires_label": format_time(reservation.expires_at.astimezone(event_zone(event)), "short",
                                     locale=str(get_locale() or "en")),
        "when": when(event),
        "tickets": ticket_fields(reservation, questions),
        "order_questions": order_questions(questions),
        "answer_field": answer_field,
        "payment_choices": payment_choices(reservation.total_minor, currency),
    }


@dataclass(frozen=True)
class PaymentChoice:
    """A way to pay offered at checkout; ``fees`` says what it adds on top of the tickets, if anything."""

    name: str
    title: Any
    fees: str = ""


def payment_choices(total_minor: int, currency: str) -> list[PaymentChoice]:
    """The ways to pay an order of this total, each with the fees it adds; paying later by invoice comes last."""
    from plugins.ticketing.order_amounts import amounts_of
    from plugins.ticketing.payments import INVOICE, providers, quoted_fees

    if total_minor == 0:
        return []
    offered = []
    for name, provider in providers().items():
        if not provider.accepts(total_minor):
            continue
        fees = quoted_fees(name, total_minor, currency)
        note = ""
        if fees:
            amounts = amounts_of(total_minor, currency, fees)
            parts = ", ".join(_("%(label)s %(amount)s", label=label, amount=amount) for label, amount in amounts.fees)
            note = _("Plus %(fees)s: %(total)s in all.", fees=parts, total=amounts.total)
        offered.append(PaymentChoice(name, provider.title, note))
    return sorted(offered, key=lambda choice: choice.name == INVOICE)


@blueprint.get("/checkout/<reservation_id>")
def checkout(reservation_id: str) -> Any:
    """The reserved tickets, the time left to buy them, the buyer's details, an attendee per ticket and
    the organiser's questions."""
    from plugins.ticketing.reservations import live_reservation

    reservation = live_reservation(reservation_id)  # unknown: 404; expired: 410, as an error page
    return render_template(
        "ticketing/storefront/checkout.html", errors={}, values={}, idempotency_key=uuid.uuid4().hex,
        **_checkout_context(reservation),
    )


def _buyer_errors(name: str, email: str) -> dict[str, list[str]]:
    from plugins.ticketing.checkout_form import EMAIL_PATTERN

    errors: dict[str, list[str]] = {}
    if not name or len(name) > 200:
        errors["name"] = [_("Enter your name (at most 200 characters).")]
    if not EMAIL_PATTERN.fullmatch(email) or len(email) > 254:
        errors["email"] = [_("Enter an email address such as name@example.org.")]
    return errors


@blueprint.post("/checkout/<reservation_id>")
def place_checkout_order(reservation_id: str) -> Any:
    """Turn the reservation into an order; the form's one-time key makes a double submit one order."""
    from plugins.ticketing.checkout import place_order
    from plugins.ticketing.checkout_form import read_checkout_form
    from plugins.ticketing.questions import questions_of
    from plugins.ticketing.reservations import live_reservation

    name = (request.form.get("name") or "").strip()
    email = (request.form.get("email") or "").strip()
    key = (request.form.get("idempotency_key") or "").strip()[:200] or None
    try:
        reservation = live_reservation(reservation_id)
    except ApiError:
        # Already ordered (the second click of a double submit) or gone: placing the order says which.
        db.session.rollback()
        place_order(reservation_id, email=email, name=name, idempotency_key=key, remote_addr=request.remote_addr)
        return redirect(url_for("storefront.order_placed", reservation_id=reservation_id), 303)
    given = read_checkout_form(request.form, reservation, questions_of(reservation.event_id))
    errors = {**_buyer_errors(name, email), **given.errors}
    if errors:
        return render_template(
            "ticketing/storefront/checkout.html", errors=errors, values=request.form,
            idempotency_key=key or uuid.uuid4().hex, **_checkout_context(reservation),
        ), 400
    provider = request.form.get("payment_provider") or None
    order, _created = place_order(
        reservation_id, email=email, name=name, attendees=given.attendees, payment_provider=provider,
        idempotency_key=key, answers=given.answers, remote_addr=request.remote_addr,
    )
    if order.status == "awaiting_payment" and order.payment_url:
        return redirect(order.payment_url, 303)
    return redirect(url_for("storefront.order_placed", reservation_id=reservation_id), 303)


@blueprint.get("/checkout/<reservation_id>/done")
def order_placed(reservation_id: str) -> Any:
    from plugins.ticketing.orders import Order

    try:
        key = str(uuid.UUID(reservation_id))
    except ValueError:
        abort(404)
    order = db.session.scalars(sa.select(Order).where(Order.reservation_id == key)).first()
    if order is None:
        abort(404)
    from plugins.ticketing.order_amounts import order_amounts
    from plugins.ticketing.payments import instructions_for

    event = db.session.get(Event, order.event_id)
    page = render_template(
        "ticketing/storefront/order_placed.html", order=order, event=event, amounts=order_amounts(order),
        instructions=instructions_for(order),
        ticket_page_path=kernel().plugins.hook_for_tenant("ticket_page_url")(order=order),
    )
    # The buyer's details and a link that downloads the tickets: never in a shared or back-button cache.
    return page, 200, {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}


def json_ld_script(data: dict[str, Any]) -> Markup:
    """A ``<script type="application/ld+json">`` block that no string in ``data`` can break out of."""
    text = json.dumps(data, ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(f'<script type="application/ld+json">{text}</script>')  # noqa: S704 - escaped above


@blueprint.app_template_global("ticketing_json_ld")
def _json_ld_global(data: dict[str, Any]) -> Markup:
    return json_ld_script(data)
