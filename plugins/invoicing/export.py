"""Invoices and credit notes as CSV, for the organiser's bookkeeping.

Written while it is sent, 500 rows at a time by keyset (each batch starts after the last row of the
one before), so a long export neither sits in memory nor repeats rows issued meanwhile. A cell that
a spreadsheet would run as a formula gets a leading ``'``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from flask import Response, stream_with_context
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant, tenant_context
from plugins.invoicing import formatting
from plugins.invoicing.documents import DocumentFilters, documents_oldest_first
from plugins.invoicing.models import INVOICE, Document

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500


def csv_cell(value: Any) -> str:
    """``value`` as CSV text that a spreadsheet shows rather than runs."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _batches(filters: DocumentFilters) -> Iterator[Document]:
    query = documents_oldest_first(filters).order_by(Document.issued_at, Document.id)
    after: tuple[Any, ...] | None = None
    while True:
        page = query
        if after is not None:
            page = page.where(sa.tuple_(Document.issued_at, Document.id) > sa.tuple_(
                sa.literal(after[0], Document.issued_at.type), sa.literal(after[1], Document.id.type)))
        batch = list(db.session.scalars(page.limit(BATCH)))
        yield from batch
        if len(batch) < BATCH:
            return
        after = (batch[-1].issued_at, batch[-1].id)


def _rows(filters: DocumentFilters) -> Iterator[list[Any]]:
    yield [_("Number"), _("Kind"), _("Issued at"), _("Order code"), _("Buyer name"), _("Buyer email"),
           _("Buyer tax ID"), _("Net"), _("Tax"), _("Total"), _("Currency")]
    for document in _batches(filters):
        money = [formatting.plain_amount(amount, document.currency)
                 for amount in (document.net_minor, document.tax_minor, document.total_minor)]
        yield [document.number, _("Invoice") if document.kind == INVOICE else _("Credit note"),
               document.issued_at.isoformat(), document.order_code, document.buyer.get("name"),
               document.buyer.get("email"), document.buyer.get("tax_id"), *money, document.currency]


def _lines(rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def csv_download(filters: DocumentFilters, filename: str) -> Response:
    """The documents ``filters`` finds, oldest first, as a CSV file of the tenant served now."""
    tenant = current_tenant()

    def produce() -> Iterator[str]:
        # The request's tenant is released once the view returns, before the body is sent.
        with tenant_context(tenant):
            yield from _lines(iter(_rows(filters)))

    return Response(
        stream_with_context(produce()), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
