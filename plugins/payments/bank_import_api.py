"""The bank import API: ``POST /api/v1/payments/bank-import`` and ``GET /api/v1/payments/bank-lines``.

The API takes JSON only, so the statement comes base64-encoded in the body (its bytes as the bank wrote
them: the encoding is worked out as on the page).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import sqlalchemy as sa
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth.authorize import require_permission
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from plugins.payments import bank_import
from plugins.payments.bank_models import BankLine
from plugins.payments.bank_statement import Statement, StatementError, parse_statement
from plugins.ticketing.plugin import ORDERS_MANAGE

blueprint = Blueprint(
    "payments_bank_import_api", __name__, url_prefix="/payments",
    description="Bank statements: orders paid by bank transfer, found by the order code each transfer quotes.",
)


class ImportQuerySchema(Schema):
    dry_run = fields.Boolean(load_default=False, metadata={"description": "Only say what the import would do"})


class ImportBodySchema(Schema):
    file = fields.String(
        required=True,
        metadata={"description": "The statement as the bank exported it (CSV), base64-encoded"},
    )


class LineResultSchema(Schema):
    row = fields.Integer(required=True, metadata={"description": "The row's line in the file"})
    outcome = fields.String(required=True, metadata={"description": ", ".join(bank_import.OUTCOME_LABELS)})
    label = fields.String(required=True)
    amount_minor = fields.Integer(allow_none=True)
    currency = fields.String(allow_none=True)
    reference = fields.String(required=True)
    payer_name = fields.String(required=True)
    booked_on = fields.Date(allow_none=True)
    transaction_id = fields.String(allow_none=True)
    order_code = fields.String(allow_none=True)
    order_total_minor = fields.Integer(allow_none=True)
    order_currency = fields.String(allow_none=True)
    message = fields.String(allow_none=True, metadata={"description": "Why a row could not be read"})


class ImportResultSchema(Schema):
    dry_run = fields.Boolean(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    outgoing = fields.Integer(required=True, metadata={"description": "Outgoing payments, skipped"})
    lines = fields.List(fields.Nested(LineResultSchema), required=True)


class BankLineSchema(Schema):
    id = fields.Integer(required=True)
    booked_on = fields.Date(allow_none=True)
    amount_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    reference = fields.String(required=True)
    payer_name = fields.String(required=True)
    bank_transaction_id = fields.String(allow_none=True)
    outcome = fields.String(required=True)
    order_code = fields.String(allow_none=True)
    imported_by = fields.String(allow_none=True)
    imported_at = fields.DateTime(required=True)


def read_statement(data: bytes) -> Statement:
    """The statement in ``data``, or the API's answer saying why it cannot be read."""
    try:
        return parse_statement(data, general_settings().currency)
    except StatementError as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.details) from None


@blueprint.route("/bank-import", methods=["POST"])
@require_permission(ORDERS_MANAGE)
@blueprint.arguments(ImportQuerySchema, location="query")
@blueprint.arguments(ImportBodySchema)
@blueprint.response(200, ImportResultSchema)
@blueprint.alt_response(413, schema=None, description="The file is too large")
@blueprint.alt_response(422, schema=None, description="Not a CSV bank statement, or too many rows")
def import_statement(query: dict[str, Any], body: dict[str, Any]) -> Any:
    """Import a bank statement: pay each order awaiting payment that a transfer quotes with its exact total.

    Every incoming line is reported with its outcome; a line imported before is a ``duplicate`` and pays
    nothing again. With ``dry_run`` nothing is written.
    """
    try:
        data = base64.b64decode(body["file"], validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(
            422, "invalid_file", _("Send the file base64-encoded."), {"json": {"file": ["Not valid base64."]}}
        ) from None
    statement = read_statement(data)
    return bank_import.preview(statement) if query["dry_run"] else bank_import.apply(statement)


@blueprint.route("/bank-lines")
@require_permission(ORDERS_MANAGE)
@blueprint.response(200, BankLineSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_bank_lines(pagination_parameters: Any) -> Any:
    """The incoming transfers imported so far, newest first, with what each one did."""
    pagination_parameters.item_count = bank_import.count_lines()
    rows = bank_import.recent_lines(pagination_parameters.page_size, pagination_parameters.first_item)
    return [{**_columns(row.line), "order_code": row.order_code} for row in rows]


def _columns(line: BankLine) -> dict[str, Any]:
    return {column.key: getattr(line, column.key) for column in sa.inspect(BankLine).column_attrs}
