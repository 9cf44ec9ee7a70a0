"""The staff API of invoices and credit notes: ``GET /api/v1/invoices`` and ``GET /api/v1/invoices/<number>``.

Both need ``orders.view``. A number of another tenant is a 404 like one that does not exist.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as MarshmallowValidationError

from bilten_core.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.invoicing import documents
from plugins.invoicing.documents import DocumentFilters
from plugins.invoicing.models import KINDS, Document
from plugins.ticketing.plugin import ORDERS_VIEW

blueprint = Blueprint(
    "invoicing_api", __name__, url_prefix="/invoices",
    description="Invoices of paid orders and credit notes of their refunds, for the organisation's staff.",
)


class InvoiceQuerySchema(Schema):
    kind = fields.String(validate=validate.OneOf(KINDS))
    issued_from = fields.Date(metadata={"description": "Issued on or after this day (the organisation's time zone)"})
    issued_to = fields.Date(metadata={"description": "Issued on or before this day (the organisation's time zone)"})
    q = fields.String(validate=validate.Length(max=documents.SEARCH_MAX),
                      metadata={"description": "Part of the number or of the order code"})

    @validates_schema
    def _period(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("issued_from") and data.get("issued_to") and data["issued_from"] > data["issued_to"]:
            raise MarshmallowValidationError({"issued_to": [_("The last day cannot come before the first.")]})


class InvoicePartySchema(Schema):
    name = fields.String(required=True)
    email = fields.String()
    address = fields.String(required=True)
    tax_id = fields.String(required=True)


class InvoiceLineSchema(Schema):
    description = fields.String(required=True)
    event = fields.String(required=True)
    quantity = fields.Integer(required=True)
    unit_minor = fields.Integer(required=True, metadata={"description": "Per item, tax included"})
    rate_bp = fields.Integer(required=True, metadata={"description": "Tax rate in basis points (1900 = 19 %)"})
    net_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True)
    total_minor = fields.Integer(required=True)


class InvoiceTaxRateSchema(Schema):
    rate_bp = fields.Integer(required=True)
    net_minor = fields.Integer(required=True)
    tax_minor = fields.Integer(required=True)
    total_minor = fields.Integer(required=True)


class InvoiceDocumentSchema(Schema):
    id = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "invoice or credit_note"})
    number = fields.String(required=True)
    sequence = fields.Integer(required=True)
    order_id = fields.String(required=True)
    order_code = fields.String(required=True)
    refund_id = fields.String(allow_none=True)
    invoice_number = fields.Method("_invoice_number", allow_none=True,
                                   metadata={"description": "The invoice a credit note corrects"})
    currency = fields.String(required=True)
    net_minor = fields.Integer(required=True, metadata={"description": "Negative on a credit note"})
    tax_minor = fields.Integer(required=True)
    total_minor = fields.Integer(required=True)
    tax_breakdown = fields.List(fields.Nested(InvoiceTaxRateSchema), required=True)
    seller = fields.Nested(InvoicePartySchema, required=True)
    buyer = fields.Nested(InvoicePartySchema, required=True)
    lines = fields.List(fields.Nested(InvoiceLineSchema), required=True)
    issued_at = fields.DateTime(required=True)
    receipt_mailed_at = fields.DateTime(allow_none=True)

    def _invoice_number(self, document: Document) -> str | None:
        invoice = db.session.get(Document, document.invoice_id) if document.invoice_id else None
        return invoice.number if invoice is not None else None


@blueprint.route("")
@require_permission(ORDERS_VIEW)
@blueprint.arguments(InvoiceQuerySchema, location="query")
@blueprint.response(200, InvoiceDocumentSchema(many=True))
@blueprint.paginate(page_size=DEFAULT_PAGE_SIZE, max_page_size=MAX_PAGE_SIZE)
def list_documents(query: dict[str, Any], pagination_parameters: Any) -> list[Document]:
    """Invoices and credit notes, newest first."""
    filters = DocumentFilters(kind=query.get("kind"), issued_from=query.get("issued_from"),
                              issued_to=query.get("issued_to"), q=query.get("q") or "")
    pagination_parameters.item_count = documents.count_documents(filters)
    return documents.find_documents(filters, pagination_parameters.first_item, pagination_parameters.page_size)


@blueprint.route("/<number>")
@require_permission(ORDERS_VIEW)
@blueprint.response(200, InvoiceDocumentSchema)
@blueprint.alt_response(404, schema=None, description="No such invoice or credit note")
def get_document(number: str) -> Document:
    """One invoice or credit note, by its number."""
    document = documents.document_by_number(number) if len(number) <= 60 else None
    if document is None:
        raise ApiError(404, "invoice_not_found", _("There is no invoice or credit note with this number."))
    return document
