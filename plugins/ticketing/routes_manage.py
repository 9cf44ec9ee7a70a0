"""The organiser's event pages on the tenant's host: ``/manage/events/``.

Creating an event is a wizard of plain forms (basics → date and place → tickets → settings →
review and publish); the event is saved as a draft after the first step and at every step after it, so an
organiser can stop anywhere and come back. The same steps edit an existing event. Every change
goes through :mod:`plugins.ticketing.events`, which applies the same rules as the API.
"""

from __future__ import annotations

import functools
import zoneinfo
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

from babel.dates import format_datetime
from babel.numbers import format_currency, get_currency_precision
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, lazy_gettext
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bilten_core.auth.authorize import has_permission, require_permission
from bilten_core.auth.identity import current_identity
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant_or_none
from plugins.ticketing import events as service
from plugins.ticketing import questions
from plugins.ticketing.models import TICKET_KINDS, VISIBILITIES, Event
from plugins.ticketing.schemas import MAX_BUYER_REFUND_HOURS, MAX_CAPACITY, MAX_PRICE_MINOR

VIEW = "events.view"
MANAGE = "events.manage"
PUBLISH = "events.publish"
FIELD_MAX = 50_000
INVALID = 422
PAGE_SIZE = 50
MAX_PAGE = 10_000

blueprint = Blueprint("ticketing_manage", __name__, url_prefix="/manage/events", template_folder="templates")

STEPS = (
    ("basics", lazy_gettext("Basics")),
    ("when", lazy_gettext("Date and place")),
    ("tickets", lazy_gettext("Tickets")),
    ("settings", lazy_gettext("Settings")),
    ("review", lazy_gettext("Review and publish")),
)
QUESTION_KINDS = {
    "text": lazy_gettext("Text"), "choice": lazy_gettext("A choice from a list"),
    "checkbox": lazy_gettext("A box to tick"), "date": lazy_gettext("A date"),
}
QUESTION_SCOPES = {
    "per_order": lazy_gettext("Once per order"), "per_ticket": lazy_gettext("For every ticket"),
}
QUESTION_PURPOSES = {
    "": lazy_gettext("Nothing else"), "tax_id": lazy_gettext("The buyer's tax id"),
    "billing_address": lazy_gettext("The buyer's billing address"),
}
REFUND_POLICY_MAX = 5000
KIND_LABELS = {
    "free": lazy_gettext("Free"), "paid": lazy_gettext("Paid"), "pay_what_you_want": lazy_gettext("Pay what you want"),
}
VISIBILITY_LABELS = {
    "public": lazy_gettext("Public: listed on your site"),
    "unlisted": lazy_gettext("Unlisted: only people with the link"),
    "private": lazy_gettext("Private: not on sale to the public"),
}
STATUS_ACTIONS = {
    "published": lazy_gettext("Publish"),
    "sales_closed": lazy_gettext("Close sales"),
    "postponed": lazy_gettext("Postpone"),
    "cancelled": lazy_gettext("Cancel the event"),
    "ended": lazy_gettext("Mark as ended"),
}


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # drafts and CSRF tokens: no shared or back-button caches
    return response


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


@functools.cache
def _timezones() -> list[str]:
    return sorted(zoneinfo.available_timezones())


def _field(name: str) -> str:
    return request.form.get(name, "")[:FIELD_MAX].replace("\x00", "").strip()


def event_or_404(event_id: UUID, *, lock: bool = False) -> Event:
    """The event ``event_id`` of the tenant being served, or a 404 page: the organiser's pages all start so."""
    try:
        return service.get_event(str(event_id), lock=lock)
    except ApiError:
        abort(404)


def _may(permission: str) -> bool:
    return has_permission(current_identity(), permission, current_tenant_or_none())


def _render(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(
        f"ticketing/manage/{template}", steps=STEPS, kind_labels=KIND_LABELS, visibility_labels=VISIBILITY_LABELS,
        status_label=service.status_label, errors=context.pop("errors", {}), error=context.pop("error", None),
        **context,
    ), status


def _refused(exc: ApiError) -> str:
    db.session.rollback()
    return exc.description or _("This could not be saved.")


def _saved(event: Event, step: str, message: str | None = None) -> Response:
    """Commit the change and go on to the event's page ``step`` (a view here), which shows ``message``."""
    db.session.commit()
    if message:
        flash(message)
    return redirect(url_for(f"ticketing_manage.{step}", event_id=event.id))


# --- List --------------------------------------------------------------------------------------


@blueprint.get("/")
@require_permission(VIEW)
def index() -> Any:
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise ApiError(400, "bad_page", _("There is no such page."))
    number = int(page)
    total = service.count_events()
    return _render(
        "list.html", events=service.list_events(offset=(number - 1) * PAGE_SIZE, limit=PAGE_SIZE),
        page=number, pages=max(1, -(-total // PAGE_SIZE)), can_manage=_may(MANAGE),
    )


# --- Step 1: basics ----------------------------------------------------------------------------


def _basics_values() -> dict[str, Any]:
    return {
        "title": _field("title"), "description_html": _field("description"), "category": _field("category") or None,
        "visibility": _field("visibility"), "organizer_email": _field("organizer_email") or None,
    }


def _basics_errors(values: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if not values["title"] or len(values["title"]) > 200:
        errors["title"] = [_("Enter a title of at most 200 characters.")]
    if values["category"] and len(values["category"]) > 60:
        errors["category"] = [_("Keep the category under 60 characters.")]
    if values["visibility"] not in VISIBILITIES:
        errors["visibility"] = [_("Choose who can see the event.")]
    email = values["organizer_email"]
    if email and ("@" not in email or len(email) > 254 or any(char.isspace() for char in email)):
        errors["organizer_email"] = [_("Enter a valid email address.")]
    return errors


@blueprint.route("/new", methods=["GET", "POST"])
@require_permission(MANAGE)
def new() -> Any:
    if request.method == "GET":
        return _render("basics.html", event=None, values={"visibility": "public"}, step="basics")
    values = _basics_values()
    errors = _basics_errors(values)
    if errors:
        return _render("basics.html", INVALID, event=None, values=values, errors=errors, step="basics")
    # A draft needs dates; it starts a week from now until the organiser picks them in the next step.
    tz = general_settings().timezone
    start = datetime.now(zoneinfo.ZoneInfo(tz)).replace(hour=19, minute=0, second=0, microsecond=0)
    start += timedelta(days=7)
    try:
        event = service.create_event(
            {**values, "timezone": tz, "starts_at": start, "ends_at": start + timedelta(hours=2)}
        )
    except ApiError as exc:
        return _render("basics.html", exc.code or INVALID, event=None, values=values, error=_refused(exc),
                       step="basics")
    return _saved(event, "when", _("The draft “%(title)s” is saved. Now pick its date and place.", title=event.title))


@blueprint.route("/<uuid:event_id>/basics", methods=["GET", "POST"])
@require_permission(MANAGE)
def basics(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    if request.method == "GET":
        values = {"title": event.title, "description_html": event.description_html, "category": event.category,
                  "visibility": event.visibility, "organizer_email": event.organizer_email}
        return _render("basics.html", event=event, values=values, step="basics")
    values = _basics_values()
    errors = _basics_errors(values)
    if errors:
        return _render("basics.html", INVALID, event=event, values=values, errors=errors, step="basics")
    try:
        service.update_event(event, values)
    except ApiError as exc:
        return _render("basics.html", exc.code or INVALID, event=event, values=values, error=_refused(exc),
                       step="basics")
    return _saved(event, "when", _("Saved."))


# --- Step 2: date and place --------------------------------------------------------------------


def _local_input(value: datetime, tz: str) -> str:
    return value.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M")


def _parse_local(raw: str) -> datetime | None:
    try:
        return datetime.strptime(raw, "%Y-%m-%dT%H:%M")
    except ValueError:
        return None


@blueprint.route("/<uuid:event_id>/when", methods=["GET", "POST"])
@require_permission(MANAGE)
def when(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    context: dict[str, Any] = {"event": event, "step": "when", "timezones": _timezones()}
    if request.method == "GET":
        values = {
            "timezone": event.timezone, "starts_at": _local_input(event.starts_at, event.timezone),
            "ends_at": _local_input(event.ends_at, event.timezone), "venue_name": event.venue_name or "",
            "venue_address": event.venue_address or "", "online_url": event.online_url or "",
        }
        return _render("when.html", values=values, **context)
    values = {name: _field(name) for name in
              ("timezone", "starts_at", "ends_at", "venue_name", "venue_address", "online_url")}
    errors: dict[str, list[str]] = {}
    starts, ends = _parse_local(values["starts_at"]), _parse_local(values["ends_at"])
    if starts is None:
        errors["starts_at"] = [_("Enter the date and time the event starts.")]
    if ends is None:
        errors["ends_at"] = [_("Enter the date and time the event ends.")]
    if values["timezone"] not in _timezones():
        errors["timezone"] = [_("Choose a time zone from the list.")]
    for name, limit in (("venue_name", 200), ("venue_address", 500), ("online_url", 500)):
        if len(values[name]) > limit:
            errors[name] = [_("Keep this under %(count)d characters.", count=limit)]
    if values["online_url"] and not values["online_url"].startswith(("https://", "http://")):
        errors["online_url"] = [_("Enter a link starting with https://.")]
    if not values["venue_name"] and not values["online_url"]:
        errors["venue_name"] = [_("Enter a venue, or a link for an online event.")]
    if errors:
        return _render("when.html", INVALID, values=values, errors=errors, **context)
    try:
        service.update_event(event, {
            "timezone": values["timezone"], "starts_at": starts, "ends_at": ends,
            "venue_name": values["venue_name"] or None, "venue_address": values["venue_address"] or None,
            "online_url": values["online_url"] or None,
        })
    except ApiError as exc:
        return _render("when.html", exc.code or INVALID, values=values, error=_refused(exc), **context)
    return _saved(event, "tickets", _("Saved."))


# --- Step 3: tickets ---------------------------------------------------------------------------


def _minor_units(raw: str, currency: str) -> int | None:
    """A price typed in major units ("12.50") in minor units, or None if it is not a valid amount."""
    digits = get_currency_precision(currency)
    try:
        amount = Decimal(raw.replace(",", ".") or "0")
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0 or amount != amount.quantize(Decimal(1).scaleb(-digits)):
        return None
    minor = int(amount.scaleb(digits))
    return minor if minor <= MAX_PRICE_MINOR else None


def _tickets_page(event: Event, status: int = 200, **context: Any) -> Any:
    currency = general_settings().currency
    return _render("tickets.html", status, event=event, step="tickets", currency=currency,
                   precision=get_currency_precision(currency), quota_sizes=_quota_sizes(event),
                   values=context.pop("values", {"kind": "paid", "quantity": "100"}), **context)


def _quota_sizes(event: Event) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for quota in event.quotas:
        for member in quota.ticket_types:
            sizes[member.id] = min(sizes.get(member.id, quota.size), quota.size)
    return sizes


@blueprint.route("/<uuid:event_id>/tickets", methods=["GET", "POST"])
@require_permission(MANAGE)
def tickets(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    if request.method == "GET":
        return _tickets_page(event)
    values = {name: _field(name) for name in ("name", "kind", "price", "quantity")}
    errors: dict[str, list[str]] = {}
    if not values["name"] or len(values["name"]) > 120:
        errors["name"] = [_("Enter a name of at most 120 characters, like Standard.")]
    if values["kind"] not in TICKET_KINDS:
        errors["kind"] = [_("Choose the kind of ticket.")]
    price = 0 if values["kind"] == "free" else _minor_units(values["price"], general_settings().currency)
    if price is None:
        errors["price"] = [_("Enter an amount of zero or more, like 12.50.")]
    elif values["kind"] == "paid" and price <= 0:
        errors["price"] = [_("A paid ticket needs a price above zero.")]
    quantity = values["quantity"]
    if not quantity.isdigit() or not 1 <= int(quantity) <= MAX_CAPACITY:
        errors["quantity"] = [_("Enter how many tickets there are, from 1 up.")]
    if errors:
        return _tickets_page(event, INVALID, values=values, errors=errors)
    try:
        ticket_type = service.save_ticket_type(event, {"name": values["name"], "kind": values["kind"],
                                                       "price_minor": price})
        service.save_quota(event, {"name": values["name"][:120], "size": int(quantity),
                                   "ticket_type_ids": [ticket_type.id]})
    except ApiError as exc:
        return _tickets_page(event, exc.code or INVALID, values=values, error=_refused(exc))
    return _saved(event, "tickets", _("Added the ticket type “%(name)s”.", name=ticket_type.name))


@blueprint.post("/<uuid:event_id>/tickets/<uuid:ticket_type_id>/delete")
@require_permission(MANAGE)
def delete_ticket_type(event_id: UUID, ticket_type_id: UUID) -> Any:
    event = event_or_404(event_id)
    try:
        ticket_type = service.get_ticket_type(event, str(ticket_type_id))
        name = ticket_type.name
        for quota in [quota for quota in event.quotas if quota.ticket_types == [ticket_type]]:
            service.delete_quota(event, quota)  # its own quota goes with it; shared ones stay
        service.delete_ticket_type(event, ticket_type)
    except ApiError as exc:
        return _tickets_page(event, exc.code or 400, error=_refused(exc))
    return _saved(event, "tickets", _("Removed the ticket type “%(name)s”.", name=name))


# --- Step 4: settings and the questions asked at checkout -------------------------------------


def _settings_page(event: Event, status: int = 200, **context: Any) -> Any:
    return _render(
        "settings.html", status, event=event, step="settings", questions=questions.questions_of(event.id),
        question_kinds=QUESTION_KINDS, question_scopes=QUESTION_SCOPES, question_purposes=QUESTION_PURPOSES,
        values=context.pop("values", {
            "refund_policy": event.refund_policy,
            "buyer_refund_hours": "" if event.buyer_refund_hours is None else str(event.buyer_refund_hours),
            "refund_fee_percent": _percent(event.refund_fee_percent_bp),
        }),
        question_values=context.pop("question_values", {"kind": "text", "scope": "per_order"}), **context,
    )


@blueprint.route("/<uuid:event_id>/settings", methods=["GET", "POST"])
@require_permission(MANAGE)
def settings(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    if request.method == "GET":
        return _settings_page(event)
    values = {"refund_policy": _field("refund_policy"), "buyer_refund_hours": _field("buyer_refund_hours"),
              "refund_fee_percent": _field("refund_fee_percent")}
    rules, errors = _buyer_refund_rules(values)
    if len(values["refund_policy"]) > REFUND_POLICY_MAX:
        errors["refund_policy"] = [_("Keep this under %(count)d characters.", count=REFUND_POLICY_MAX)]
    if errors:
        return _settings_page(event, INVALID, values=values, errors=errors)
    try:
        service.update_event(event, {"refund_policy": values["refund_policy"], **rules})
    except ApiError as exc:
        return _settings_page(event, exc.code or INVALID, values=values, error=_refused(exc))
    return _saved(event, "show", _("Saved."))


def _percent(basis_points: int) -> str:
    return "" if not basis_points else f"{Decimal(basis_points) / 100:f}".rstrip("0").rstrip(".")


def _buyer_refund_rules(values: dict[str, str]) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The buyer refund policy as typed (hours, blank for none; a percentage) as event fields, and errors."""
    rules: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    hours = values["buyer_refund_hours"]
    if not hours:
        rules["buyer_refund_hours"] = None
    elif hours.isdigit() and int(hours) <= MAX_BUYER_REFUND_HOURS:
        rules["buyer_refund_hours"] = int(hours)
    else:
        errors["buyer_refund_hours"] = [_("Enter a whole number of hours from 0 to %(max)d, or leave it empty.",
                                          max=MAX_BUYER_REFUND_HOURS)]
    try:
        percent = Decimal(values["refund_fee_percent"] or "0")
        valid = percent.is_finite() and 0 <= percent <= 100 and (percent * 100) == (percent * 100).to_integral()
    except InvalidOperation:
        valid = False
    if valid:
        rules["refund_fee_percent_bp"] = int(percent * 100)
    else:
        errors["refund_fee_percent"] = [_("Enter a percentage from 0 to 100, with at most two decimals.")]
    return rules, errors


def _question_form() -> tuple[dict[str, Any], dict[str, Any]]:
    """The question form as typed (to show again) and as the service takes it."""
    typed: dict[str, Any] = {
        name: _field(name) for name in ("label", "help_text", "kind", "scope", "options", "purpose")
    }
    typed["required"] = request.form.get("required") == "yes"
    data = {**typed, "options": [line.strip() for line in typed["options"].splitlines() if line.strip()]}
    return typed, data


def _question_refused(exc: ApiError) -> dict[str, Any]:
    """Field errors for a question the service refused, or the page's error for other refusals."""
    message = _refused(exc)
    if exc.error_code == "invalid_question" and isinstance(exc.details, dict):
        return {"errors": exc.details}
    return {"error": message}


def _question(event: Event, question_id: UUID) -> questions.Question:
    try:
        return questions.get_question(event, str(question_id))
    except ApiError:
        abort(404)


@blueprint.post("/<uuid:event_id>/questions")
@require_permission(MANAGE)
def add_question(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    typed, data = _question_form()
    try:
        question = questions.save_question(event, data)
    except ApiError as exc:
        return _settings_page(event, exc.code or INVALID, question_values=typed, **_question_refused(exc))
    return _saved(event, "settings", _("Added the question “%(label)s”.", label=question.label))


@blueprint.route("/<uuid:event_id>/questions/<uuid:question_id>", methods=["GET", "POST"])
@require_permission(MANAGE)
def edit_question(event_id: UUID, question_id: UUID) -> Any:
    event = event_or_404(event_id)
    question = _question(event, question_id)
    context: dict[str, Any] = {"event": event, "question": question, "step": "settings",
                               "question_kinds": QUESTION_KINDS, "question_scopes": QUESTION_SCOPES,
                               "question_purposes": QUESTION_PURPOSES}
    if request.method == "GET":
        typed = {"label": question.label, "help_text": question.help_text, "kind": question.kind,
                 "scope": question.scope, "required": question.required, "options": "\n".join(question.options),
                 "purpose": question.purpose}
        return _render("question.html", values=typed, **context)
    typed, data = _question_form()
    try:
        questions.save_question(event, data, question)
    except ApiError as exc:
        return _render("question.html", exc.code or INVALID, values=typed, **context, **_question_refused(exc))
    return _saved(event, "settings", _("Saved the question “%(label)s”.", label=question.label))


@blueprint.post("/<uuid:event_id>/questions/<uuid:question_id>/move")
@require_permission(MANAGE)
def move_question(event_id: UUID, question_id: UUID) -> Any:
    event = event_or_404(event_id)
    question = _question(event, question_id)
    step = {"up": -1, "down": 1}.get(_field("direction"))
    if step is None:
        abort(400)
    try:
        questions.move_question(event, question, step)
    except ApiError as exc:
        return _settings_page(event, exc.code or INVALID, error=_refused(exc))
    return _saved(event, "settings")


@blueprint.post("/<uuid:event_id>/questions/<uuid:question_id>/delete")
@require_permission(MANAGE)
def delete_question(event_id: UUID, question_id: UUID) -> Any:
    event = event_or_404(event_id)
    question = _question(event, question_id)
    label = question.label
    try:
        questions.delete_question(event, question)
    except ApiError as exc:
        return _settings_page(event, exc.code or INVALID, error=_refused(exc))
    return _saved(
        event, "settings", _("Removed the question “%(label)s”; orders keep the answers already given.", label=label)
    )


# --- Step 5: review, and the event's own page --------------------------------------------------


def _review(event: Event, status: int = 200, error: str | None = None) -> Any:
    transitions = service.allowed_transitions(event) if _may(PUBLISH) else []
    return _render("review.html", status, event=event, step="review", error=error,
                   problems=service.publish_problems(event) if event.status == "draft" else {},
                   transitions=transitions, actions=STATUS_ACTIONS, can_manage=_may(MANAGE),
                   currency=general_settings().currency, quota_sizes=_quota_sizes(event))


@blueprint.get("/<uuid:event_id>/")
@require_permission(VIEW)
def show(event_id: UUID) -> Any:
    return _review(event_or_404(event_id))


@blueprint.post("/<uuid:event_id>/status")
@require_permission(PUBLISH)
def change_status(event_id: UUID) -> Any:
    event = event_or_404(event_id, lock=True)
    target = _field("to")
    try:
        service.transition(event, target)
    except ApiError as exc:
        message = _refused(exc)
        return _review(event_or_404(event_id), exc.code or 409, error=message)
    status = service.status_label(event.status)
    return _saved(event, "show", _("“%(title)s” is now %(status)s.", title=event.title, status=status))


@blueprint.post("/<uuid:event_id>/copy")
@require_permission(MANAGE)
def copy(event_id: UUID) -> Any:
    event = service.copy_event(event_or_404(event_id))
    return _saved(event, "basics", _("This is a copy, saved as a draft. Change what differs and publish it."))


@blueprint.post("/<uuid:event_id>/delete")
@require_permission(MANAGE)
def delete(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    title = event.title
    try:
        service.delete_event(event)
    except ApiError as exc:
        return _review(event, exc.code or 409, error=_refused(exc))
    db.session.commit()
    flash(_("The draft “%(title)s” was deleted.", title=title))
    return redirect(url_for("ticketing_manage.index"))


# --- Formatting --------------------------------------------------------------------------------


@blueprint.app_template_filter("tk_when")
def when_in(value: datetime, tz: str) -> str:
    """A moment as the event's local date and time, in the visitor's language."""
    return format_datetime(value, "medium", tzinfo=zoneinfo.ZoneInfo(tz), locale=str(get_locale() or "en"))


@blueprint.app_template_filter("tk_money")
def money(minor: int, currency: str) -> str:
    """An amount in minor units, written the visitor's way (12,50 € or €12.50)."""
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=str(get_locale() or "en"))
