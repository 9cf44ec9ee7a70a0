"""The receipt mailed to a buyer once an order is paid, with its invoice attached as a PDF.

It is sent in the transaction that issues (or finds) the invoice, with the order row locked, and
the invoice records when it was sent: a second delivery of the announcement sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from flask_babel import force_locale
from flask_babel import gettext as _

from bilten_core.general_settings import general_settings
from bilten_core.mail import Attachment, send_mail
from plugins.invoicing import formatting, invoice_pdf
from plugins.invoicing.models import Document
from plugins.ticketing import orders, ticket_links
from plugins.ticketing.orders import Order

RECEIPT = "invoice_receipt"


def download_path(order: Order) -> str:
    """The buyer's path to the order's invoice PDF, signed like the order's ticket link."""
    return f"/invoices/{quote(order.code)}.pdf?" + urlencode({"token": ticket_links.download_token(order)})


def mail_receipt(order: Order, invoice: Document) -> None:
    """Queue the receipt with ``invoice`` attached, and note it on the invoice and in the order's history."""
    locale = general_settings().default_locale
    with force_locale(locale):
        subject = _("Receipt for your order %(code)s (invoice %(number)s)", code=order.code, number=invoice.number)
        context = {
            "order": order, "invoice": invoice, "pdf_path": download_path(order),
            "total": formatting.money(invoice.total_minor, invoice.currency, locale),
            "issued": formatting.issued_day(invoice.issued_at, locale),
        }
    pdf = invoice_pdf.render_documents([invoice])
    send_mail(order.email, "invoicing/receipt", context, subject=subject, locale=locale,
              attachments=[Attachment(f"invoice-{invoice.number}.pdf", pdf, "application/pdf")])
    invoice.receipt_mailed_at = datetime.now(UTC)
    orders.note(order, "mail_sent", {"kind": RECEIPT})
