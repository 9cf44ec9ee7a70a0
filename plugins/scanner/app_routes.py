"""The scanner app for phones at ``/scan``: a page shell, its script, manifest and service worker.

The shell holds no one's data, so the service worker may cache it and the app opens without a
network. Everything the door needs comes from the scanner API (``/api/v1/scanner/...``) with a
device token or the signed-in member's session; ``/scan/events.json`` lists the events the
caller may scan. The translated strings are rendered into the page as a JSON block, which
``static/scanner.js`` reads: the page runs no inline script, so a strict CSP holds.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, render_template, send_from_directory, url_for
from flask_babel import gettext as _

from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant
from plugins.scanner.app_strings import app_strings
from plugins.scanner.clock import db_now
from plugins.scanner.devices import current_scanner, require_scanner
from plugins.ticketing.models import Event

STATIC = Path(__file__).parent / "static"
SCOPE = "/scan"
# A member may pick among events that have not ended more than this long ago.
RECENT = timedelta(days=1)
MAX_EVENTS = 100

blueprint = Blueprint(
    "scanner_app", __name__, url_prefix=SCOPE, template_folder="templates", static_folder="static",
)


def _config() -> dict[str, Any]:
    return {
        "api": "/api/v1/scanner",
        "events": url_for("scanner_app.events"),
        "serviceWorker": url_for("scanner_app.service_worker"),
        "scope": SCOPE,
        "jsqr": url_for("scanner_app.static", filename="vendor/jsQR.js"),
    }


@blueprint.get("")
def shell() -> Any:
    return render_template("scanner/app.html", strings=app_strings(), config=_config())


@blueprint.get("/sw.js")
def service_worker() -> Response:
    """The service worker, served from ``/scan`` so that it may control ``/scan`` itself."""
    response = send_from_directory(STATIC, "sw.js", mimetype="text/javascript", max_age=0)
    response.headers["Service-Worker-Allowed"] = SCOPE
    response.headers["Cache-Control"] = "no-cache"
    return response


@blueprint.get("/manifest.webmanifest")
def manifest() -> Response:
    name = general_settings().display_name or current_tenant().name
    icon = "scanner_app.static"
    body = {
        "name": _("%(site)s door scanner", site=name),
        "short_name": _("Scanner"),
        "id": SCOPE,
        "scope": SCOPE,
        "start_url": SCOPE,
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#1d4ed8",
        "icons": [
            {"src": url_for(icon, filename="icons/scanner-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": url_for(icon, filename="icons/scanner-512.png"), "sizes": "512x512", "type": "image/png"},
            {"src": url_for(icon, filename="icons/scanner-maskable-192.png"), "sizes": "192x192",
             "type": "image/png", "purpose": "maskable"},
            {"src": url_for(icon, filename="icons/scanner-maskable-512.png"), "sizes": "512x512",
             "type": "image/png", "purpose": "maskable"},
        ],
    }
    response = jsonify(body)
    response.mimetype = "application/manifest+json"
    return response


@blueprint.get("/events.json")
@require_scanner
def events() -> Any:
    """The events the caller may scan: a device's own, or for a member every event not long over."""
    scanner = current_scanner()
    query = sa.select(Event).order_by(Event.starts_at, Event.id).limit(MAX_EVENTS)
    if scanner.device is not None:
        query = query.where(Event.id.in_([str(event_id) for event_id in scanner.device.event_ids]))
    else:
        query = query.where(Event.ends_at >= db_now() - RECENT, Event.status != "draft")
    found = db.session.scalars(query).all()
    body = {
        "device": {"id": str(scanner.device.id), "name": scanner.device.name} if scanner.device else None,
        "events": [
            {"id": str(event.id), "title": event.title, "starts_at": event.starts_at.isoformat(),
             "ends_at": event.ends_at.isoformat()}
            for event in found
        ],
    }
    db.session.commit()  # the device's last_seen_at
    response = jsonify(body)
    response.headers["Cache-Control"] = "private, no-store"
    return response
