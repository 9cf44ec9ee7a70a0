"""The bank import page, ``/manage/payments/bank-import``: upload a statement, check the preview, confirm.

The preview carries the file, base64-encoded, in its confirmation form, so confirming reads the same
statement again and matches it against the orders as they are then. The page also holds the bank details
buyers are told to pay to, and the lines imported lately (with a CSV export of them).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.tenant_settings import InvalidSettings, update_settings
from plugins.payments import bank_import
from plugins.payments.bank_import import ImportResult
from plugins.payments.bank_statement import MAX_BYTES, MAX_ROWS, Statement, StatementError, parse_statement
from plugins.payments.offline_settings import NAMESPACE, OfflinePaymentSettings, offline_settings
from plugins.ticketing.order_admin import csv_cell, csv_download
from plugins.ticketing.plugin import ORDERS_MANAGE
from plugins.ticketing.storefront import money_amount

RECENT_LINES = 20
CSV_LINES = 5000
BANK_FIELDS = tuple(OfflinePaymentSettings.model_fields)
FIELD_MAX = 2000

blueprint = Blueprint(
    "payments_bank_import", __name__, url_prefix="/manage/payments/bank-import", template_folder="templates"
)


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # payers' names and form tokens: never cached
    return response


def _page(status: int = 200, **context: Any) -> tuple[str, int]:
    settings = offline_settings()
    context.setdefault("bank_values", {name: getattr(settings, name) or "" for name in BANK_FIELDS})
    return render_template(
        "payments/bank_import.html", step=None, labels=bank_import.OUTCOME_LABELS,
        recent=bank_import.recent_lines(RECENT_LINES), max_kb=MAX_BYTES // 1024, max_rows=MAX_ROWS,
        errors=context.pop("errors", {}), bank_errors=context.pop("bank_errors", {}),
        error=context.pop("error", None), **context,
    ), status


def _results(template: str, result: ImportResult, **context: Any) -> str:
    return render_template(
        f"payments/{template}", step=None, labels=bank_import.OUTCOME_LABELS, result=result, **context
    )


@blueprint.get("/")
@require_permission(ORDERS_MANAGE)
def page() -> Any:
    return _page()


def _read(data: bytes) -> Statement | StatementError:
    try:
        return parse_statement(data, general_settings().currency)
    except StatementError as exc:
        return exc


@blueprint.post("/preview")
@require_permission(ORDERS_MANAGE)
def preview() -> Any:
    try:
        upload = request.files.get("statement")
    except RequestEntityTooLarge:
        return _page(413, error=_("The file is larger than %(size)d KB.", size=MAX_BYTES // 1024))
    data = upload.read(MAX_BYTES + 1) if upload is not None else b""
    if not data:
        return _page(422, errors={"statement": [_("Choose the CSV file of a bank statement.")]})
    statement = _read(data)
    if isinstance(statement, StatementError):
        return _page(statement.status, errors={"statement": [statement.message]})
    return _results("bank_preview.html", bank_import.preview(statement),
                    encoded=base64.b64encode(data).decode(), filename=(upload.filename or "")[:200] if upload else "")


@blueprint.post("/confirm")
@require_permission(ORDERS_MANAGE)
def confirm() -> Any:
    try:
        data = base64.b64decode(request.form.get("statement_data", ""), validate=True)
    except (binascii.Error, ValueError):
        data = b""
    statement = _read(data) if data else None
    if not isinstance(statement, Statement):
        return _page(422, error=_("The statement could not be read again. Upload it once more."))
    return _results("bank_result.html", bank_import.apply(statement))


@blueprint.post("/bank-details")
@require_permission(ORDERS_MANAGE)
def save_bank_details() -> Any:
    values = {name: request.form.get(name, "")[:FIELD_MAX].replace("\x00", "").strip() for name in BANK_FIELDS}
    changes = {name: value or None for name, value in values.items()}
    changes["instructions"] = values["instructions"]
    try:
        update_settings(NAMESPACE, changes)
    except InvalidSettings as exc:
        db.session.rollback()
        problems = {name.split(".")[0]: [message] for name, message in exc.errors.items()}
        return _page(422, bank_values=values, bank_errors=problems,
                     error=_("The bank details were not saved; check the fields marked."))
    db.session.commit()
    flash(_("The bank details are saved."))
    return redirect(url_for(".page"))


@blueprint.get("/lines.csv")
@require_permission(ORDERS_MANAGE)
def lines_csv() -> Response:
    return csv_download(_csv_rows(), "bank-transfers.csv")


def _csv_rows() -> Iterator[str]:
    """The latest lines imported, as CSV a spreadsheet shows rather than runs (header first)."""
    header = [_("Booked on"), _("Amount"), _("Currency"), _("Payer"), _("Reference"), _("Bank transaction id"),
              _("Outcome"), _("Order code"), _("Imported at")]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows = (
        [row.line.booked_on, money_amount(row.line.amount_minor, row.line.currency), row.line.currency,
         row.line.payer_name, row.line.reference, row.line.bank_transaction_id,
         bank_import.OUTCOME_LABELS.get(row.line.outcome, row.line.outcome), row.order_code,
         row.line.imported_at.isoformat()]
        for row in bank_import.recent_lines(CSV_LINES)
    )
    for values in (header, *rows):
        writer.writerow([csv_cell(value) for value in values])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
