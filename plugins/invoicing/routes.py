"""Invoice pages: the buyer's PDF download, and the organiser's list of invoices and credit notes.

The buyer's ``/invoices/<order code>.pdf`` opens with the same signed link as the order's tickets
(:mod:`plugins.ticketing.ticket_links`), which the receipt mail carries, or for the signed-in account
of this tenant whose confirmed address bought the order. ``/manage/invoices/`` (``orders.view``) lists
the documents newest first with a period filter, 50 a page, with a CSV export of the same filters.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, request
from flask_babel import get_locale
from flask_babel import gettext as _

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.invoicing import documents, formatting, invoice_pdf
from plugins.invoicing.documents import DocumentFilters
from plugins.invoicing.export import csv_download
from plugins.invoicing.models import INVOICE, KINDS, Document
from plugins.ticketing import ticket_links
from plugins.ticketing.orders import Order
from plugins.ticketing.plugin import ORDERS_VIEW

PAGE_SIZE = 50
MAX_PAGE = 10_000
FIELD_MAX = 200
CODE_MAX = 32
# Invoices carry names and addresses: nobody else's to keep or to be told where they came from.
PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}

blueprint = Blueprint("invoicing", __name__, template_folder="templates")
manage_blueprint = Blueprint("invoicing_manage", __name__, url_prefix="/manage/invoices",
                             template_folder="templates")


@blueprint.app_template_filter("inv_money")
def _money_filter(minor: int, currency: str) -> str:
    return formatting.money(minor, currency, str(get_locale() or "en"))


@blueprint.app_template_filter("inv_day")
def _day_filter(moment: Any) -> str:
    return formatting.issued_day(moment, str(get_locale() or "en"))


def _pdf(pdf: bytes, filename: str) -> Response:
    return Response(pdf, mimetype="application/pdf", headers={
        **PRIVATE, "Content-Disposition": f'attachment; filename="{filename}"', "X-Robots-Tag": "noindex",
    })


# --- The buyer's download ------------------------------------------------------------------------


def _problem(status: int, title: str, message: str) -> Any:
    return render_template("invoicing/problem.html", title=title, message=message), status, PRIVATE


def _order(code: str) -> Order | None:
    if len(code) > CODE_MAX:
        return None
    return db.session.scalars(sa.select(Order).where(Order.code == code.strip().upper())).first()


@blueprint.get("/invoices/<code>.pdf")
def download(code: str) -> Any:
    order = _order(code)
    refusal = ticket_links.refusal_for_buyer(order, request.args.get("token", ""))
    if order is None or refusal is not None:
        if refusal is ticket_links.Refusal.EXPIRED:
            message = _("This download link has expired. Find your order with your email address and order "
                        "code to get a new one.")
        else:
            message = _("This download link is not valid. Use the link in your receipt mail, or sign in with "
                        "the email address you ordered with.")
        return _problem(403, _("Link not valid"), message)
    found = documents.documents_of(order.id)
    if not found:
        return _problem(404, _("No invoice yet"), _(
            "Order %(code)s has no invoice. Invoices are issued once an order that costs something is paid.",
            code=order.code,
        ))
    return _pdf(invoice_pdf.render_documents(found), f"invoice-{order.code}.pdf")


# --- The organiser's list ------------------------------------------------------------------------


@manage_blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # buyers' names and addresses: never cached
    return response


def _arg(name: str) -> str:
    return request.args.get(name, "")[:FIELD_MAX].replace("\x00", "").strip()


def _day(values: dict[str, str], name: str, errors: dict[str, list[str]]) -> date | None:
    if not values[name]:
        return None
    try:
        return date.fromisoformat(values[name])
    except ValueError:
        errors[name] = [_("Enter a day as YYYY-MM-DD.")]
        return None


def _filters() -> tuple[DocumentFilters, dict[str, str], dict[str, list[str]]]:
    values = {name: _arg(name) for name in ("q", "kind", "issued_from", "issued_to")}
    errors: dict[str, list[str]] = {}
    if len(values["q"]) > documents.SEARCH_MAX:
        errors["q"] = [_("Search for at most %(max)d characters.", max=documents.SEARCH_MAX)]
    if values["kind"] and values["kind"] not in KINDS:
        errors["kind"] = [_("Choose a kind of document from the list.")]
    issued_from, issued_to = _day(values, "issued_from", errors), _day(values, "issued_to", errors)
    if issued_from and issued_to and issued_from > issued_to:
        errors["issued_to"] = [_("The last day cannot come before the first.")]
    filters = DocumentFilters(kind=values["kind"] or None, issued_from=issued_from, issued_to=issued_to,
                              q=values["q"])
    return filters, values, errors


def _page_number() -> int:
    page = request.args.get("page", "1")
    if not page.isdigit() or not 1 <= int(page) <= MAX_PAGE:
        raise ApiError(400, "bad_page", _("There is no such page."))
    return int(page)


def kind_label(kind: str) -> str:
    return _("Invoice") if kind == INVOICE else _("Credit note")


@manage_blueprint.get("/")
@require_permission(ORDERS_VIEW)
def document_list() -> Any:
    number = _page_number()
    filters, values, errors = _filters()
    kept = {name: value for name, value in values.items() if value}
    context: dict[str, Any] = {"values": values, "errors": errors, "kind_label": kind_label, "kinds": KINDS}
    if errors:
        page = render_template("invoicing/manage/list.html", found=[], total=0, page=1, pages=1, kept={}, **context)
        return page, 400
    total = documents.count_documents(filters)
    found = documents.find_documents(filters, (number - 1) * PAGE_SIZE, PAGE_SIZE)
    return render_template("invoicing/manage/list.html", found=found, total=total, page=number,
                           pages=max(1, -(-total // PAGE_SIZE)), kept=kept, **context)


@manage_blueprint.get("/export.csv")
@require_permission(ORDERS_VIEW)
def export() -> Response:
    filters, _values, errors = _filters()
    if errors:
        raise ApiError(400, "invalid_filters", _("Some filters are not valid."), errors)
    return csv_download(filters, "invoices.csv")


@manage_blueprint.get("/<number>.pdf")
@require_permission(ORDERS_VIEW)
def document_pdf(number: str) -> Response:
    document: Document | None = documents.document_by_number(number) if len(number) <= 60 else None
    if document is None:
        abort(404)
    return _pdf(invoice_pdf.render_documents([document]), f"{document.kind.replace('_', '-')}-{document.number}.pdf")
