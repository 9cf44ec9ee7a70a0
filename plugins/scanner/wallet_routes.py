"""The buyer's tickets on a phone: ``/tickets/<order code>?token=...``, each valid ticket with its QR code.

The token is the signed one ticketing puts in its links (``ticket_links``). The page is installable
(a manifest per order, whose start URL is the page itself) and ``static/wallet-sw.js`` keeps it once
opened, so it shows the codes at the door without a network. When the operator has configured a
pass certificate (``wallet_settings``), each ticket also comes as an Apple Wallet pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from uuid import UUID

import segno
import sqlalchemy as sa
from flask import Blueprint, Response, abort, jsonify, render_template, request, send_from_directory, url_for
from flask_babel import gettext as _
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant
from plugins.scanner import wallet_pass
from plugins.scanner.models import Revocation
from plugins.scanner.wallet_settings import passkit_settings
from plugins.ticketing import ticket_links
from plugins.ticketing.models import Event
from plugins.ticketing.my_tickets import ADMITTING_STATUSES
from plugins.ticketing.orders import Order, Ticket
from plugins.ticketing.storefront import when
from plugins.ticketing.ticket_display import display_code

STATIC = Path(__file__).parent / "static"
SCOPE = "/tickets/"
CODE_MAX = 32
# Level Q restores a quarter of the symbol (a cracked phone screen), as on the PDF; see docs/scanner.md.
QR_ERROR_LEVEL = "q"
# The page shows ticket codes and its URL carries a token: nobody else's to keep or to be told about.
PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}

blueprint = Blueprint(
    "scanner_wallet", __name__, url_prefix="/tickets", template_folder="templates", static_folder="static",
)


def page_path(order: Order) -> str:
    """The path of ``order``'s ticket page with a fresh signed token."""
    return f"/tickets/{quote(order.code)}?" + urlencode({"token": ticket_links.download_token(order)})


def valid_tickets(order: Order) -> list[Ticket]:
    """The tickets of ``order`` that still admit: none unless it is paid; never a revoked one."""
    if order.status not in ADMITTING_STATUSES:
        return []
    tickets = [ticket for ticket in order.tickets if ticket.valid]
    if not tickets:
        return []
    revoked = set(db.session.scalars(
        sa.select(Revocation.ticket_id).where(Revocation.ticket_id.in_([str(ticket.id) for ticket in tickets]))
    ))
    return [ticket for ticket in tickets if str(ticket.id) not in revoked]


def qr_svg(code: str) -> Markup:
    """``code`` as an inline SVG QR code: level Q, a quiet zone of 4 modules, black on white, sized by CSS."""
    symbol = segno.make_qr(code, error=QR_ERROR_LEVEL, boost_error=False)
    svg = symbol.svg_inline(scale=1, border=4, omitsize=True, dark="#000000", light="#ffffff", svgclass="wallet-qr")
    return Markup(svg)  # noqa: S704 - segno's own markup; the code is URL-safe ASCII


def _order(code: str) -> Order | None:
    if len(code) > CODE_MAX:
        return None
    return db.session.scalars(
        sa.select(Order).where(Order.code == code.strip().upper())
        .options(selectinload(Order.tickets).selectinload(Ticket.ticket_type))
    ).first()


def _opened_order(code: str) -> tuple[Order | None, ticket_links.Refusal | None]:
    """The order of ``code`` when the request's token opens it, else why not (an unknown code is a bad link)."""
    order = _order(code)
    if order is None:
        return None, ticket_links.Refusal.INVALID
    return order, ticket_links.check_token(request.args.get("token", ""), order)


def _refused(refusal: ticket_links.Refusal) -> Any:
    if refusal is ticket_links.Refusal.EXPIRED:
        message = _("This ticket link has expired. Find your order with your email address and order code "
                    "to get a new one.")
    else:
        message = _("This ticket link is not valid. Use the link in your confirmation mail, or find your order "
                    "with your email address and order code.")
    page = render_template("scanner/wallet_problem.html", title=_("Link not valid"), message=message)
    return page, 403, PRIVATE


def _site() -> str:
    return general_settings().display_name or current_tenant().name


@blueprint.get("/<code>")
def tickets_page(code: str) -> Any:
    order, refusal = _opened_order(code)
    if order is None or refusal is not None:
        return _refused(refusal or ticket_links.Refusal.INVALID)
    event = db.session.get(Event, order.event_id)
    if event is None:
        abort(404)
    token = request.args.get("token", "")
    passes = passkit_settings() is not None
    tickets = [
        {
            "type": ticket.ticket_type.name,
            "attendee": ticket.attendee_name or order.name,
            "qr": qr_svg(display_code(ticket)),
            "pass_url": url_for(".wallet_pass_file", code=order.code, ticket_id=ticket.id, token=token)
            if passes else None,
        }
        for ticket in valid_tickets(order)
    ]
    page = render_template(
        "scanner/wallet.html", order=order, event=event, when=when(event), tickets=tickets,
        manifest_url=url_for(".manifest", code=order.code, token=token),
        config={"serviceWorker": url_for(".service_worker"), "scope": SCOPE},
    )
    return page, 200, PRIVATE


@blueprint.get("/<code>/manifest.webmanifest")
def manifest(code: str) -> Response:
    """What "add to home screen" installs: this order's ticket page, opened with its token."""
    order, refusal = _opened_order(code)
    if order is None or refusal is not None:
        abort(404)
    body = {
        "name": _("Tickets %(code)s · %(site)s", code=order.code, site=_site()),
        "short_name": _("Tickets"),
        "id": f"/tickets/{quote(order.code)}",
        "scope": SCOPE,
        "start_url": url_for(".tickets_page", code=order.code, token=request.args.get("token", "")),
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#1d4ed8",
        "icons": [
            {"src": url_for("scanner_app.static", filename=f"icons/scanner-{size}.png"), "sizes": f"{size}x{size}",
             "type": "image/png"}
            for size in (192, 512)
        ],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    response.headers.update(PRIVATE)
    return response


@blueprint.get("/wallet-sw.js")
def service_worker() -> Response:
    """The service worker, served from ``/tickets/`` so that it controls the ticket pages."""
    response = send_from_directory(STATIC, "wallet-sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/<code>/<uuid:ticket_id>.pkpass")
def wallet_pass_file(code: str, ticket_id: UUID) -> Any:
    settings = passkit_settings()
    if settings is None:
        abort(404)
    order, refusal = _opened_order(code)
    if order is None or refusal is not None:
        return _refused(refusal or ticket_links.Refusal.INVALID)
    ticket = next((ticket for ticket in valid_tickets(order) if str(ticket.id) == str(ticket_id)), None)
    event = db.session.get(Event, order.event_id)
    if ticket is None or event is None:
        abort(404)
    content = wallet_pass.build_pass(settings, _site(), order, event, ticket, display_code(ticket))
    return Response(content, mimetype=wallet_pass.MIMETYPE, headers={
        **PRIVATE, "Content-Disposition": f'attachment; filename="ticket-{order.code}-{ticket.id}.pkpass"',
    })
