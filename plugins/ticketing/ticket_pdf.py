"""An order's valid tickets as a PDF: one A5 page per ticket, with its code as text and as a QR code.

Text is set in DejaVu Sans when the system has it (it covers Latin, Greek and Cyrillic, so
"Zoë Łukasiewicz" prints as typed); otherwise in Bitstream Vera, which ships with reportlab but
only covers Western European letters. The document is rendered in the tenant's default language
and with reportlab's invariant mode, so the same order always gives the same bytes.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from pathlib import Path

import reportlab
import segno
from flask_babel import force_locale
from flask_babel import gettext as _
from reportlab.lib.pagesizes import A5
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant
from plugins.ticketing.models import Event
from plugins.ticketing.my_tickets import ADMITTING_STATUSES
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.storefront import format_money, when
from plugins.ticketing.ticket_display import display_code

# (regular, bold) by the paths Linux distributions install DejaVu under.
_DEJAVU_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),  # Debian, Ubuntu
    Path("/usr/share/fonts/dejavu"),  # Fedora, Alpine
    Path("/usr/share/fonts/TTF"),  # Arch
)
_VERA_DIR = Path(reportlab.__file__).parent / "fonts"
REGULAR = "BiltenTicketSans"
BOLD = "BiltenTicketSans-Bold"
# Ticket codes are URL-safe ASCII: a core PDF font, and no two characters look alike.
CODE_FONT = "Courier"
CODE_SIZE = 7.0
# Level Q restores a quarter of the symbol (a cracked phone screen); see docs/scanner.md.
QR_ERROR_LEVEL = "q"

PAGE_WIDTH, PAGE_HEIGHT = A5
MARGIN = 36.0
TEXT_WIDTH = PAGE_WIDTH - 2 * MARGIN
QR_SIZE = 130.0
INK = (0.07, 0.09, 0.15)
MUTED = (0.29, 0.33, 0.39)


def has_tickets(order: Order) -> bool:
    """Whether ``order`` has a PDF: paid (or partly refunded) and still holding a valid ticket."""
    return order.status in ADMITTING_STATUSES and any(ticket.valid for ticket in order.tickets)


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


def _lines(text: str, font: str, size: float, max_lines: int) -> list[str]:
    """``text`` wrapped to the page; words too long for a line (URLs) are cut, the end marked with …."""
    lines: list[str] = []
    for line in simpleSplit(text, font, size, TEXT_WIDTH):
        while pdfmetrics.stringWidth(line, font, size) > TEXT_WIDTH:
            cut = len(line) - 1
            while cut > 1 and pdfmetrics.stringWidth(line[:cut], font, size) > TEXT_WIDTH:
                cut -= 1
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], lines[max_lines - 1][:-1] + "\u2026"]
    return lines


class _Page:
    """Writes lines downwards from the top of one page."""

    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.y = PAGE_HEIGHT - MARGIN

    def text(self, text: str, size: float, *, font: str = REGULAR, color: tuple[float, ...] = INK,
             max_lines: int = 3, after: float = 4) -> None:
        self.canvas.setFont(font, size)
        self.canvas.setFillColorRGB(*color)
        for line in _lines(text, font, size, max_lines):
            self.y -= size * 1.25
            self.canvas.drawString(MARGIN, self.y, line)
        self.y -= after

    def fact(self, label: str, value: str, max_lines: int = 1) -> None:
        self.text(label, 9, font=BOLD, color=MUTED, max_lines=1, after=0)
        self.text(value, 12, max_lines=max_lines, after=6)

    def rule(self) -> None:
        self.y -= 6
        self.canvas.setStrokeColorRGB(*MUTED)
        self.canvas.setLineWidth(0.5)
        self.canvas.line(MARGIN, self.y, PAGE_WIDTH - MARGIN, self.y)
        self.y -= 10


def _qr(canvas: Canvas, value: str, x: float, y: float) -> None:
    """``value`` as a QR code (level Q, a quiet zone of 4 modules) filling a QR_SIZE square at (x, y)."""
    matrix = segno.make_qr(value, error=QR_ERROR_LEVEL, boost_error=False).matrix
    module = QR_SIZE / (len(matrix) + 8)
    canvas.setFillColorRGB(0, 0, 0)
    for row, cells in enumerate(matrix):
        top = y + QR_SIZE - (row + 4) * module
        for column, dark in enumerate(cells):
            if dark:
                canvas.rect(x + (column + 4) * module, top - module, module, module, stroke=0, fill=1)


def qr_png(value: str) -> bytes:
    """``value`` as a QR code PNG (level Q, a quiet zone of 4 modules, 4 pixels a module), for mail."""
    buffer = io.BytesIO()
    segno.make_qr(value, error=QR_ERROR_LEVEL, boost_error=False).save(buffer, kind="png", scale=4, border=4)
    return buffer.getvalue()


def _code_lines(code: str) -> list[str]:
    """``code`` cut into lines that fit the page in CODE_FONT at CODE_SIZE."""
    per_line = max(1, int(TEXT_WIDTH // pdfmetrics.stringWidth("0", CODE_FONT, CODE_SIZE)))
    return [code[start:start + per_line] for start in range(0, len(code), per_line)]


def _place(event: Event) -> str:
    venue = ", ".join(part for part in (event.venue_name, event.venue_address) if part)
    if venue:
        return venue
    if event.online_url:
        return _("Online: %(url)s", url=event.online_url)
    return ""


def _valid_tickets(order: Order) -> Iterator[Ticket]:
    return (ticket for ticket in order.tickets if ticket.valid)


def _draw_ticket(canvas: Canvas, order: Order, event: Event, ticket: Ticket, site: str, number: int,
                 count: int) -> None:
    page = _Page(canvas)
    page.text(site, 10, color=MUTED, max_lines=1, after=8)
    # At most this many lines each, so that the longest texts still end above the QR code.
    page.text(event.title, 18, font=BOLD, max_lines=3, after=6)
    page.text(when(event), 11, max_lines=2)
    if place := _place(event):
        page.text(place, 11, max_lines=2)
    page.rule()
    page.fact(_("Ticket type"), ticket.ticket_type.name, max_lines=2)
    page.fact(_("Attendee"), ticket.attendee_name or order.name, max_lines=2)
    page.fact(_("Order code"), order.code)
    price = format_money(ticket.price_minor, order.currency) if ticket.price_minor else _("Free")
    page.fact(_("Price"), price)
    # The code sits at the foot of the page, however much text came above it, its text under the QR code.
    code = display_code(ticket)
    lines = _code_lines(code)
    line_height = CODE_SIZE * 1.2
    qr_y = MARGIN + 24 + len(lines) * line_height
    _qr(canvas, code, (PAGE_WIDTH - QR_SIZE) / 2, qr_y)
    canvas.setFont(CODE_FONT, CODE_SIZE)
    canvas.setFillColorRGB(*INK)
    for row, line in enumerate(lines, start=1):
        canvas.drawCentredString(PAGE_WIDTH / 2, qr_y - row * line_height, line)
    canvas.setFont(REGULAR, 9)
    canvas.setFillColorRGB(*MUTED)
    canvas.drawCentredString(PAGE_WIDTH / 2, MARGIN + 8, _("Show this code at the entrance."))
    canvas.drawCentredString(PAGE_WIDTH / 2, MARGIN - 6, _("Ticket %(number)d of %(count)d", number=number,
                                                           count=count))


def render_tickets(order: Order, event: Event) -> bytes:
    """The PDF of ``order``'s valid tickets for ``event``, in the current tenant's default language."""
    _register_fonts()
    settings = general_settings()
    site = settings.display_name or current_tenant().name
    tickets = list(_valid_tickets(order))
    buffer = io.BytesIO()
    with force_locale(settings.default_locale):
        canvas = Canvas(buffer, pagesize=A5, invariant=True, pageCompression=True,
                        lang=settings.default_locale.replace("_", "-"))
        canvas.setTitle(_("Tickets for %(event)s, order %(code)s", event=event.title, code=order.code))
        canvas.setAuthor(site)
        canvas.setCreator("Bilten")
        for number, ticket in enumerate(tickets, start=1):
            _draw_ticket(canvas, order, event, ticket, site, number, len(tickets))
            canvas.showPage()
        canvas.save()
    return buffer.getvalue()
