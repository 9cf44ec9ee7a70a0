"""Invoices and credit notes as PDF: A4 pages with the seller, the buyer, the lines and their tax rates,
and the totals by rate.

Set in DejaVu Sans when the system has it (so "Zoë Łukasiewicz" prints as typed), otherwise in
reportlab's Bitstream Vera, like the ticket PDF; in the tenant's default language; and in
reportlab's invariant mode, so the same documents always give the same bytes.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from pathlib import Path

import reportlab
from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from plugins.invoicing import formatting
from plugins.invoicing.models import INVOICE, Document

_DEJAVU_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu"),  # Fedora, Alpine
    Path("/usr/share/fonts/TTF"),  # Arch
)
_VERA_DIR = Path(reportlab.__file__).parent / "fonts"
REGULAR = "BiltenInvoiceSans"
BOLD = "BiltenInvoiceSans-Bold"

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 50.0
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
INK = (0.07, 0.09, 0.15)
MUTED = (0.29, 0.33, 0.39)
# Right edges of the number columns, and the width left for a line's description.
QUANTITY_RIGHT, UNIT_RIGHT, RATE_RIGHT, AMOUNT_RIGHT = 330.0, 415.0, 475.0, PAGE_WIDTH - MARGIN
DESCRIPTION_WIDTH = 240.0
SIZE = 10.0
LEADING = SIZE * 1.35


def _font_files() -> tuple[Path, Path]:
    for folder in _DEJAVU_DIRS:
        regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            return regular, bold
    return _VERA_DIR / "Vera.ttf", _VERA_DIR / "VeraBd.ttf"


@functools.cache
def _register_fonts() -> None:
    # reportlab keeps fonts in a process-wide registry: registering once is enough.
    regular, bold = _font_files()
    pdfmetrics.registerFont(TTFont(REGULAR, str(regular)))
    pdfmetrics.registerFont(TTFont(BOLD, str(bold)))


class _Writer:
    """Writes lines downwards, starting a new page when one is full."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.y = PAGE_HEIGHT - MARGIN

    def room(self, height: float) -> None:
        if self.y - height < MARGIN:
            self.canvas.showPage()
            self.y = PAGE_HEIGHT - MARGIN

    def text(self, text: str, size: float = SIZE, *, font: str = REGULAR, color: tuple[float, ...] = INK,
             width: float = TEXT_WIDTH, after: float = 0) -> None:
        for line in simpleSplit(text, font, size, width) or [""]:
            self.room(size * 1.35)
            self.y -= size * 1.35
            self.canvas.setFont(font, size)
            self.canvas.setFillColorRGB(*color)
            self.canvas.drawString(MARGIN, self.y, line)
        self.y -= after

    def row(self, cells: Sequence[tuple[float, str]], *, font: str = REGULAR) -> None:
        """Right-aligned ``(right edge, text)`` cells on the current line (drawn after the description)."""
        self.canvas.setFont(font, SIZE)
        self.canvas.setFillColorRGB(*INK)
        for right, text in cells:
            self.canvas.drawRightString(right, self.y, text)

    def rule(self) -> None:
        self.room(10)
        self.y -= 5
        self.canvas.setStrokeColorRGB(*MUTED)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN, self.y, PAGE_WIDTH - MARGIN, self.y)
        self.y -= 5


def _party(writer: _Writer, heading: str, party: dict[str, str]) -> None:
    writer.text(heading, 9, font=BOLD, color=MUTED)
    writer.text(party.get("name", ""), font=BOLD)
    for line in (party.get("address") or "").splitlines():
        writer.text(line)
    if party.get("email"):
        writer.text(party["email"])
    if party.get("tax_id"):
        writer.text(_("Tax ID: %(tax_id)s", tax_id=party["tax_id"]))
    writer.y -= 8


def _title(document: Document) -> str:
    if document.kind == INVOICE:
        return _("Invoice %(number)s", number=document.number)
    return _("Credit note %(number)s", number=document.number)


def _heading(writer: _Writer, document: Document, locale: str) -> None:
    writer.text(_title(document), 18, font=BOLD, after=6)
    writer.text(_("Date of issue: %(day)s", day=formatting.issued_day(document.issued_at, locale)))
    writer.text(_("Order: %(code)s", code=document.order_code))
    if document.kind != INVOICE and document.invoice_id:
        invoice = db.session.get(Document, document.invoice_id)
        if invoice is not None:
            writer.text(_("Credit note for invoice %(number)s", number=invoice.number), font=BOLD)
    writer.y -= 10


def _table_head(writer: _Writer) -> None:
    writer.room(LEADING * 2)
    writer.y -= LEADING
    writer.canvas.setFont(BOLD, SIZE)
    writer.canvas.setFillColorRGB(*MUTED)
    writer.canvas.drawString(MARGIN, writer.y, _("Description"))
    writer.row([(QUANTITY_RIGHT, _("Qty")), (UNIT_RIGHT, _("Unit price")), (RATE_RIGHT, _("Tax")),
                (AMOUNT_RIGHT, _("Amount"))], font=BOLD)
    writer.rule()


def _lines(writer: _Writer, document: Document, locale: str) -> None:
    _table_head(writer)
    for line in document.lines:
        description = line["description"] + (f" ({line['event']})" if line.get("event") else "")
        parts = simpleSplit(description, REGULAR, SIZE, DESCRIPTION_WIDTH) or [""]
        writer.room(LEADING * len(parts) + 4)
        top = writer.y - LEADING
        for part in parts:
            writer.y -= LEADING
            writer.canvas.setFont(REGULAR, SIZE)
            writer.canvas.setFillColorRGB(*INK)
            writer.canvas.drawString(MARGIN, writer.y, part)
        bottom, writer.y = writer.y, top
        writer.row([
            (QUANTITY_RIGHT, str(line["quantity"])),
            (UNIT_RIGHT, formatting.money(line["unit_minor"], document.currency, locale)),
            (RATE_RIGHT, formatting.rate(line["rate_bp"], locale)),
            (AMOUNT_RIGHT, formatting.money(line["total_minor"], document.currency, locale)),
        ])
        writer.y = bottom - 4
    writer.rule()


def _totals(writer: _Writer, document: Document, locale: str) -> None:
    rows = [(_("Net total"), document.net_minor, REGULAR)]
    rows += [(_("Tax %(rate)s on %(net)s", rate=formatting.rate(rate["rate_bp"], locale),
                net=formatting.money(rate["net_minor"], document.currency, locale)), rate["tax_minor"], REGULAR)
             for rate in document.tax_breakdown]
    rows.append((_("Total") if document.kind == INVOICE else _("Total credited"), document.total_minor, BOLD))
    for label, amount, font in rows:
        writer.room(LEADING)
        writer.y -= LEADING
        writer.canvas.setFont(font, SIZE)
        writer.canvas.setFillColorRGB(*INK)
        writer.canvas.drawRightString(RATE_RIGHT, writer.y, label)
        writer.row([(AMOUNT_RIGHT, formatting.money(amount, document.currency, locale))], font=font)


def _draw(canvas: Canvas, document: Document, locale: str) -> None:
    writer = _Writer(canvas)
    _party(writer, _("From"), document.seller)
    _heading(writer, document, locale)
    _party(writer, _("Billed to"), document.buyer)
    _lines(writer, document, locale)
    _totals(writer, document, locale)
    if document.kind == INVOICE:
        writer.y -= 16
        writer.text(_("Paid in full. Thank you."), color=MUTED)


def render_documents(documents: Sequence[Document]) -> bytes:
    """One PDF of ``documents``, each starting on a new page, in the current tenant's default language."""
    _register_fonts()
    locale = general_settings().default_locale
    buffer = io.BytesIO()
    with force_locale(locale):
        canvas = Canvas(buffer, pagesize=A4, invariant=True, pageCompression=True, lang=locale.replace("_", "-"))
        canvas.setTitle(", ".join(_title(document) for document in documents))
        if documents:
            canvas.setAuthor(documents[0].seller.get("name", ""))
        canvas.setCreator("Bilten")
        for document in documents:
            _draw(canvas, document, locale)
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()
