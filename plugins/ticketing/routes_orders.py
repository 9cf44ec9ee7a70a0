"""The organiser's order and attendee pages of an event: ``/manage/events/<id>/orders`` and ``.../attendees``.

Lists with a filter form (plain GET, so a filtered list can be bookmarked and exported as CSV with the
same filters), an order's page with its tickets and history, and the buttons that change it: mail it
again, approve or reject one held for review, cancel or refund it (after a confirmation step), record its
payment, change a ticket's attendee. The work is done in :mod:`plugins.ticketing.order_admin`,
:mod:`plugins.ticketing.checkout` and :mod:`plugins.ticketing.refunds`, which the staff API shares.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from uuid import UUID

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext

from bilten_core.auth.authorize import has_permission, require_permission
from bilten_core.auth.identity import current_identity
from bilten_core.auth.models import Account
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import current_tenant_or_none
from plugins.ticketing import checkout, order_admin, orders, refunds
from plugins.ticketing.models import Event
from plugins.ticketing.my_tickets import STATUS_LABELS
from plugins.ticketing.order_admin import AttendeeFilters, OrderFilters
from plugins.ticketing.orders import Order, OrderHistory
from plugins.ticketing.plugin import ORDERS_MANAGE, ORDERS_VIEW
from plugins.ticketing.routes_manage import event_or_404, money
from plugins.ticketing.storefront import parse_amount

PAGE_SIZE = 50
MAX_PAGE = 10_000
FIELD_MAX = 1_000
REASON_MAX = 500
REFERENCE_MAX = 200
BAD_FILTERS = 400
INVALID = 422

blueprint = Blueprint(
    "ticketing_orders_manage", __name__, url_prefix="/manage/events/<uuid:event_id>", template_folder="templates"
)

ACTION_LABELS = {
    "created": lazy_gettext("Placed"),
    "risk_noted": lazy_gettext("Noted by the risk checks"),
    orders.HELD: lazy_gettext("Held for review"),
    "review_approved": lazy_gettext("Approved after review"),
    "review_rejected": lazy_gettext("Rejected after review"),
    "awaiting_payment": lazy_gettext("Awaiting payment"),
    "paid": lazy_gettext("Paid"),
    "cancelled": lazy_gettext("Cancelled"),
    "expired": lazy_gettext("Expired: the payment deadline passed"),
    "refunded": lazy_gettext("Refunded"),
    "partially_refunded": lazy_gettext("Partly refunded"),
    "released_places": lazy_gettext("Places back on sale"),
    "mail_sent": lazy_gettext("Mail sent to the buyer"),
    order_admin.MAIL_RESENT: lazy_gettext("Mail sent again by staff"),
    order_admin.ATTENDEE_CHANGED: lazy_gettext("Attendee changed"),
}
DETAIL_LABELS = {
    "name": lazy_gettext("Name"), "email": lazy_gettext("Email"), "reason": lazy_gettext("Reason"),
    "reference": lazy_gettext("Payment reference"), "kind": lazy_gettext("Mail"),
    "places": lazy_gettext("Places"), "provider": lazy_gettext("Payment"),
    "amount_minor": lazy_gettext("Amount"), "tickets": lazy_gettext("Tickets revoked"),
    "refund_status": lazy_gettext("Refund"),
    "reasons": lazy_gettext("Reasons"),
}
# Ids and the like mean nothing to a reader of the history; they stay in the API's.
HIDDEN_DETAILS = frozenset({"ticket_id", "ticket_ids", "refund_id", "currency"})
REFUND_STATUS_LABELS = {
    refunds.PENDING: lazy_gettext("pending at the payment provider"),
    refunds.SUCCEEDED: lazy_gettext("recorded"),
    refunds.FAILED: lazy_gettext("failed"),
}
EMPTY = "-"

FiltersT = TypeVar("FiltersT", OrderFilters, AttendeeFilters)
# A list's filters as the service takes them, the fields as typed (to show again), and their errors.
Filtered = tuple[FiltersT, dict[str, str], dict[str, list[str]]]


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    what: str
    who: str
    details: list[str]


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # buyers' personal data and CSRF tokens: never cached
    return response


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


def _order(event: Event, code: str) -> Order:
    try:
        return order_admin.order_of_event(code, event.id)
    except ApiError:
        abort(404)


@blueprint.app_template_global("may_see_orders")
def may_see_orders() -> bool:
    """Whether the visitor may open the order pages here (the event pages show the links only then)."""
    return has_permission(current_identity(), ORDERS_VIEW, current_tenant_or_none())


def _may_manage() -> bool:
    return has_permission(current_identity(), ORDERS_MANAGE, current_tenant_or_none())


def _arg(name: str) -> str:
    return request.args.get(name, "")[:FIELD_MAX].replace("\x00", "").strip()


def _field(name: str) -> str:
    return request.form.get(name, "")[:FIELD_MAX].replace("\x00", "").strip()


def _page_number() -> int:
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise ApiError(400, "bad_page", _("There is no such page."))
    return int(page)


def _day(values: dict[str, str], name: str, errors: dict[str, list[str]]) -> date | None:
    if not values[name]:
        return None
    try:
        return date.fromisoformat(values[name])
    except ValueError:
        errors[name] = [_("Enter a day as YYYY-MM-DD.")]
        return None


def _common_filters(values: dict[str, str], errors: dict[str, list[str]]) -> None:
    if len(values["q"]) > order_admin.SEARCH_MAX:
        errors["q"] = [_("Search for at most %(max)d characters.", max=order_admin.SEARCH_MAX)]
    if values["status"] and values["status"] not in orders.STATUSES:
        errors["status"] = [_("Choose a status from the list.")]


def _order_filters(event: Event) -> Filtered[OrderFilters]:
    values = {name: _arg(name) for name in ("q", "status", "created_from", "created_to")}
    errors: dict[str, list[str]] = {}
    _common_filters(values, errors)
    created_from, created_to = _day(values, "created_from", errors), _day(values, "created_to", errors)
    if created_from and created_to and created_from > created_to:
        errors["created_to"] = [_("The last day cannot come before the first.")]
    filters = OrderFilters(event_id=event.id, status=values["status"] or None, q=values["q"],
                           created_from=created_from, created_to=created_to)
    return filters, values, errors


def _attendee_filters(event: Event) -> Filtered[AttendeeFilters]:
    values = {name: _arg(name) for name in ("q", "status", "ticket_type_id", "valid")}
    errors: dict[str, list[str]] = {}
    _common_filters(values, errors)
    type_ids = {ticket_type.id for ticket_type in event.ticket_types}
    if values["ticket_type_id"] and values["ticket_type_id"] not in type_ids:
        errors["ticket_type_id"] = [_("Choose a ticket type from the list.")]
    filters = AttendeeFilters(event_id=event.id, ticket_type_id=values["ticket_type_id"] or None,
                              status=values["status"] or None, valid_only=values["valid"] == "1", q=values["q"])
    return filters, values, errors


def _kept(values: dict[str, str]) -> dict[str, str]:
    """The filters in use, for links that keep them (pages, CSV)."""
    return {name: value for name, value in values.items() if value}


def _render(template: str, status: int = 200, **context: Any) -> Any:
    return render_template(
        f"ticketing/manage/{template}", step=None, status_labels=STATUS_LABELS, statuses=orders.STATUSES,
        tz=general_settings().timezone, errors=context.pop("errors", {}), error=context.pop("error", None),
        **context,
    ), status


def _list_page(
    template: str, event: Event, filtered: Filtered[FiltersT],
    count: Callable[[FiltersT], int], find: Callable[[FiltersT, int, int], Sequence[Any]],
) -> Any:
    """One page of a filtered list; with filters that are not valid, the form with their errors and no rows."""
    number = _page_number()
    filters, values, errors = filtered
    if errors:
        return _render(template, BAD_FILTERS, event=event, values=values, errors=errors, found=[], total=0,
                       page=1, pages=1, kept={})
    total = count(filters)
    return _render(template, event=event, values=values, found=find(filters, (number - 1) * PAGE_SIZE, PAGE_SIZE),
                   total=total, page=number, pages=max(1, -(-total // PAGE_SIZE)), kept=_kept(values))


def _valid(filtered: Filtered[FiltersT]) -> FiltersT:
    """The filters of a CSV export, which has no form to show their errors on: a 400 with them instead."""
    filters, _values, errors = filtered
    if errors:
        raise ApiError(BAD_FILTERS, "invalid_filters", _("Some filters are not valid."), errors)
    return filters


# --- Orders --------------------------------------------------------------------------------------


@blueprint.get("/orders/")
@require_permission(ORDERS_VIEW)
def order_list(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    return _list_page("orders.html", event, _order_filters(event), order_admin.count_orders, order_admin.find_orders)


@blueprint.get("/orders.csv")
@require_permission(ORDERS_VIEW)
def orders_csv(event_id: UUID) -> Response:
    event = event_or_404(event_id)
    filters = _valid(_order_filters(event))
    return order_admin.csv_download(order_admin.orders_csv(filters), f"orders-{event.slug}.csv")


def _history(order: Order) -> list[HistoryLine]:
    names = _account_names(entry.actor for entry in order.history)
    labels: dict[str, Any] = {}
    for offered in kernel().plugins.hook_for_tenant("order_history_labels")():
        labels.update(offered or {})
    labels.update(ACTION_LABELS)  # ticketing's own actions keep their names
    return [
        HistoryLine(at=entry.created_at, what=str(labels.get(entry.action, entry.action)),
                    who=_who(entry.actor, names), details=_details(entry))
        for entry in order.history
    ]


def _account_names(actors: Iterable[str | None]) -> dict[str, str]:
    """The names of the accounts among ``actors`` (``user:<id>``), in one query."""
    ids = {actor.split(":", 1)[1] for actor in actors if actor and actor.startswith("user:")}
    if not ids:
        return {}
    rows = db.session.execute(sa.select(Account.id, Account.display_name, Account.email).where(Account.id.in_(ids)))
    return {str(account_id): name or email for account_id, name, email in rows}


def _who(actor: str | None, names: dict[str, str]) -> str:
    """Who made a change, as staff read it: a person's name, the buyer, or Bilten itself."""
    kind, _sep, ident = (actor or "").partition(":")
    if kind == "user":
        return names.get(ident, _("a former account"))
    if kind in ("job", "system", "cli"):
        return _("Bilten, automatically")
    if kind == "anonymous" or not kind:
        return _("the buyer")
    return actor or EMPTY


def _details(entry: OrderHistory) -> list[str]:
    lines = []
    for key, value in entry.details.items():
        if key in HIDDEN_DETAILS:
            continue
        label = str(DETAIL_LABELS.get(key, key))
        if key == "amount_minor":
            lines.append(f"{label}: {money(value, entry.details.get('currency') or general_settings().currency)}")
        elif key == "refund_status":
            lines.append(f"{label}: {REFUND_STATUS_LABELS.get(value, value)}")
        elif key == "reasons" and isinstance(value, list):
            lines.append(f"{label}: {', '.join(str(reason) for reason in value)}")
        elif isinstance(value, list) and len(value) == 2:  # a change: [before, after]
            before, after = value
            lines.append(f"{label}: {before or EMPTY} → {after or EMPTY}")
        else:
            lines.append(f"{label}: {value}")
    return lines


def _detail(event: Event, order: Order, status: int = 200, **context: Any) -> Any:
    from plugins.ticketing.order_amounts import order_amounts
    from plugins.ticketing.questions import PER_ORDER, answered, questions_of

    asked = questions_of(event.id)
    per_order = [question for question in asked if question.scope == PER_ORDER]
    per_ticket = [question for question in asked if question.scope != PER_ORDER]
    return _render("order.html", status, event=event, order=order, history=_history(order),
                   amounts=order_amounts(order), order_answers=answered(per_order, order.answers),
                   ticket_answers={ticket.id: answered(per_ticket, ticket.answers) for ticket in order.tickets},
                   can_manage=_may_manage(), resendable=order.status in order_admin.RESEND_KIND,
                   editable=order.status not in order_admin.CLOSED_STATUSES,
                   refundable=order.status in refunds.REFUNDABLE_STATUSES, refunded=refunds.refunded_minor(order),
                   ticket_errors=context.pop("ticket_errors", {}), ticket_values=context.pop("ticket_values", {}),
                   **context)


def _refused(exc: ApiError) -> str:
    db.session.rollback()
    return exc.description or _("This could not be done.")


def _refused_page(event: Event, code: str, exc: ApiError) -> Any:
    """The order's page again, saying why the change was refused."""
    return _detail(event, _order(event, code), exc.code or 409, error=_refused(exc))


def _done(event: Event, order: Order, message: str) -> Any:
    """Back to the order's page, which says what was done."""
    flash(message)
    return redirect(url_for(".order_detail", event_id=event.id, code=order.code))


@blueprint.get("/orders/<code>")
@require_permission(ORDERS_VIEW)
def order_detail(event_id: UUID, code: str) -> Any:
    event = event_or_404(event_id)
    return _detail(event, _order(event, code))


@blueprint.post("/orders/<code>/resend")
@require_permission(ORDERS_MANAGE)
def resend(event_id: UUID, code: str) -> Any:
    event = event_or_404(event_id)
    order = _order(event, code)
    try:
        order_admin.resend(order)
    except ApiError as exc:
        return _refused_page(event, code, exc)
    return _done(event, order, _("The mail is on its way to %(email)s again.", email=order.email))


@blueprint.route("/orders/<code>/cancel", methods=["GET", "POST"])
@require_permission(ORDERS_MANAGE)
def cancel(event_id: UUID, code: str) -> Any:
    event = event_or_404(event_id)
    order = _order(event, code)
    if request.method == "GET":
        return _render("orders_cancel.html", event=event, order=order, values={})
    reason = _field("reason")
    if len(reason) > REASON_MAX:
        errors = {"reason": [_("Keep the reason under %(count)d characters.", count=REASON_MAX)]}
        return _render("orders_cancel.html", INVALID, event=event, order=order, values={"reason": reason},
                       errors=errors)
    try:
        checkout.cancel_order(order, reason)
    except ApiError as exc:
        return _refused_page(event, code, exc)
    return _done(event, order, _("Order %(code)s is cancelled; its places are back on sale.", code=order.code))


@blueprint.route("/orders/<code>/approve", methods=["GET", "POST"])
@require_permission(ORDERS_MANAGE)
def approve(event_id: UUID, code: str) -> Any:
    """Confirm, then approve an order held for review: its payment starts."""
    event = event_or_404(event_id)
    order = _order(event, code)
    if request.method == "GET":
        return _render("orders_review.html", event=event, order=order, decision="approve", values={})
    try:
        checkout.approve_held(order)
    except ApiError as exc:
        return _refused_page(event, code, exc)
    return _done(event, order, _("Order %(code)s is approved; the buyer is told how to pay.", code=order.code))


@blueprint.route("/orders/<code>/reject", methods=["GET", "POST"])
@require_permission(ORDERS_MANAGE)
def reject(event_id: UUID, code: str) -> Any:
    """Confirm (with an optional reason), then reject an order held for review: it is cancelled."""
    event = event_or_404(event_id)
    order = _order(event, code)
    if request.method == "GET":
        return _render("orders_review.html", event=event, order=order, decision="reject", values={})
    reason = _field("reason")
    if len(reason) > REASON_MAX:
        errors = {"reason": [_("Keep the reason under %(count)d characters.", count=REASON_MAX)]}
        return _render("orders_review.html", INVALID, event=event, order=order, decision="reject",
                       values={"reason": reason}, errors=errors)
    try:
        checkout.reject_held(order, reason)
    except ApiError as exc:
        return _refused_page(event, code, exc)
    return _done(event, order, _("Order %(code)s is rejected; its places are back on sale.", code=order.code))


@blueprint.post("/orders/<code>/mark-paid")
@require_permission(ORDERS_MANAGE)
def mark_paid(event_id: UUID, code: str) -> Any:
    event = event_or_404(event_id)
    order = _order(event, code)
    reference = _field("reference")[:REFERENCE_MAX] or None
    try:
        checkout.mark_paid(order, reference)
    except ApiError as exc:
        return _refused_page(event, code, exc)
    return _done(event, order, _("Order %(code)s is paid.", code=order.code))


@dataclass(frozen=True)
class RefundRequest:
    """The refund form as typed, and what it asks for once read."""

    values: dict[str, Any]
    ticket_ids: list[str]
    amount_minor: int | None
    reason: str


def _refund_request(order: Order) -> tuple[RefundRequest, dict[str, list[str]]]:
    # A ticket refunded meanwhile stays chosen, so that the refund says so rather than quietly skips it.
    own_ids = {ticket.id for ticket in order.tickets}
    chosen = [ticket_id for ticket_id in request.form.getlist("ticket_ids") if ticket_id in own_ids]
    values: dict[str, Any] = {"ticket_ids": chosen, "amount": _field("amount"), "reason": _field("reason")}
    errors: dict[str, list[str]] = {}
    amount = None
    if values["amount"]:
        amount = parse_amount(values["amount"], order.currency)
        if amount is None or amount <= 0:
            errors["amount"] = [_("Enter an amount above zero, such as 12.50.")]
    elif not chosen:
        errors["ticket_ids"] = [_("Choose tickets to refund, or enter an amount.")]
    if len(values["reason"]) > REASON_MAX:
        errors["reason"] = [_("Keep the reason under %(count)d characters.", count=REASON_MAX)]
    return RefundRequest(values, chosen, amount, values["reason"]), errors


def _refund_page(template: str, event: Event, order: Order, status: int = 200, **context: Any) -> Any:
    refundable = order.total_minor - refunds.refunded_minor(order)
    return _render(template, status, event=event, order=order, refundable=refundable,
                   valid_tickets=[ticket for ticket in order.tickets if ticket.valid], **context)


@blueprint.route("/orders/<code>/refund", methods=["GET", "POST"])
@require_permission(ORDERS_MANAGE)
def refund(event_id: UUID, code: str) -> Any:
    """Choose tickets and/or an amount, confirm on a second page, then refund."""
    event = event_or_404(event_id)
    order = _order(event, code)
    if order.status not in refunds.REFUNDABLE_STATUSES:
        return _detail(event, order, 409, error=_("Only paid orders can be refunded."))
    if request.method == "GET":
        return _refund_page("orders_refund.html", event, order, values={"ticket_ids": []})
    wanted, errors = _refund_request(order)
    if errors:
        return _refund_page("orders_refund.html", event, order, INVALID, values=wanted.values, errors=errors)
    chosen = [ticket for ticket in order.tickets if ticket.id in wanted.ticket_ids]
    amount = wanted.amount_minor if wanted.amount_minor is not None else sum(t.price_minor for t in chosen)
    if request.form.get("confirmed") != "yes":
        return _refund_page("orders_refund_confirm.html", event, order, values=wanted.values, chosen=chosen,
                            amount=amount)
    try:
        refunds.refund(order, ticket_ids=wanted.ticket_ids, amount_minor=wanted.amount_minor, reason=wanted.reason)
    except ApiError as exc:
        message = _refused(exc)
        return _refund_page("orders_refund.html", event, _order(event, code), exc.code or INVALID,
                            values=wanted.values, error=message)
    return _done(event, order, _("%(amount)s refunded on order %(code)s.", amount=money(amount, order.currency),
                                 code=order.code))


@blueprint.post("/orders/<code>/tickets/<uuid:ticket_id>")
@require_permission(ORDERS_MANAGE)
def change_attendee(event_id: UUID, code: str, ticket_id: UUID) -> Any:
    event = event_or_404(event_id)
    order = _order(event, code)
    try:
        ticket = order_admin.ticket_of(order, str(ticket_id))
    except ApiError:
        abort(404)
    values = {"name": _field("name"), "email": _field("email")}
    try:
        changed = order_admin.rename_attendee(ticket, values["name"], values["email"])
    except ApiError as exc:
        problems = exc.details if exc.code == INVALID else {}
        return _detail(event, _order(event, code), exc.code or INVALID, error=_refused(exc),
                       ticket_errors={ticket.id: problems}, ticket_values={ticket.id: values})
    return _done(event, order, _("The attendee is saved.") if changed else _("Nothing changed."))


# --- Attendees -----------------------------------------------------------------------------------


@blueprint.get("/attendees/")
@require_permission(ORDERS_VIEW)
def attendee_list(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    return _list_page(
        "attendees.html", event, _attendee_filters(event), order_admin.count_attendees, order_admin.find_attendees
    )


@blueprint.get("/attendees.csv")
@require_permission(ORDERS_VIEW)
def attendees_csv(event_id: UUID) -> Response:
    event = event_or_404(event_id)
    filters = _valid(_attendee_filters(event))
    return order_admin.csv_download(order_admin.attendees_csv(filters), f"attendees-{event.slug}.csv")
