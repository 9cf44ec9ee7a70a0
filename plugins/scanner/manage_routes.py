"""The organiser's scanner pages, ``/manage/scanner/``: pair a device (its one-time code is shown
once), unpair devices, and set up each event's gates.

Plain forms over the same services as the staff API (:mod:`plugins.scanner.devices`,
:mod:`plugins.scanner.gates`); everything needs ``scanner.manage``.
"""

from __future__ import annotations

import zoneinfo
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from babel.dates import format_datetime
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.errors import ApiError
from bilten_core.general_settings import general_settings
from bilten_core.tenancy.context import current_tenant_or_none
from plugins.scanner import devices
from plugins.scanner import gates as gate_service
from plugins.scanner.models import ENTRY_MODES, SINGLE_ENTRY, Gate
from plugins.scanner.plugin import MANAGE
from plugins.ticketing.models import Event

NAME_MAX = 100
MAX_EVENTS = 200
INVALID = 422

blueprint = Blueprint("scanner_manage", __name__, url_prefix="/manage/scanner", template_folder="templates")


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


@blueprint.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # pairing codes and CSRF tokens
    return response


def _events() -> list[Event]:
    """Events a device could be paired for: not drafts, the latest first."""
    return list(db.session.scalars(
        sa.select(Event).where(Event.status != "draft").order_by(Event.starts_at.desc(), Event.id).limit(MAX_EVENTS)
    ))


def _page(status: int = 200, **context: Any) -> Any:
    events = _events()
    titles = {str(event.id): event.title for event in events}
    gate_counts = dict(db.session.execute(
        sa.select(Gate.event_id, sa.func.count()).group_by(Gate.event_id)
    ).all())
    return render_template(
        "scanner/manage.html", events=events, titles=titles, devices=devices.list_devices(),
        gate_counts={str(k): v for k, v in gate_counts.items()}, errors=context.pop("errors", {}),
        **context,
    ), status


@blueprint.get("/")
@require_permission(MANAGE)
def index() -> Any:
    return _page()


@blueprint.post("/pairing-codes")
@require_permission(MANAGE)
def create_pairing_code() -> Any:
    name = request.form.get("name", "").strip()[:NAME_MAX + 1]
    event_ids = [value for value in request.form.getlist("event_ids")[:MAX_EVENTS] if _is_uuid(value)]
    errors: dict[str, str] = {}
    if not name or len(name) > NAME_MAX:
        errors["name"] = _("Enter a name of at most %(max)d characters.", max=NAME_MAX)
    if not event_ids:
        errors["event_ids"] = _("Choose at least one event.")
    if errors:
        return _page(INVALID, errors=errors, values={"name": name, "event_ids": event_ids})
    try:
        pairing, code = devices.create_pairing_code(name, event_ids, [])
    except ApiError as exc:
        db.session.rollback()
        return _page(INVALID, errors={"event_ids": exc.description}, values={"name": name, "event_ids": event_ids})
    db.session.commit()
    # Shown in this answer only: the code is not stored, and the page is not cached.
    return _page(201, pairing={"code": code, "name": pairing.name, "expires_at": pairing.expires_at})


@blueprint.post("/devices/<uuid:device_id>/unpair")
@require_permission(MANAGE)
def unpair(device_id: UUID) -> Response:
    try:
        device = devices.device_or_404(device_id)
    except ApiError:
        abort(404)
    devices.revoke(device)
    db.session.commit()
    flash(_("“%(name)s” is unpaired: it can no longer scan.", name=device.name))
    return redirect(url_for("scanner_manage.index"))


@blueprint.route("/events/<uuid:event_id>/gates", methods=["GET", "POST"])
@require_permission(MANAGE)
def event_gates(event_id: UUID) -> Any:
    event = db.session.get(Event, str(event_id))
    if event is None:
        abort(404)
    values: dict[str, Any] = {"entry_mode": SINGLE_ENTRY}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {
            "name": request.form.get("name", "").strip()[:NAME_MAX + 1],
            "entry_mode": request.form.get("entry_mode", SINGLE_ENTRY),
            "exits_allowed": request.form.get("exits_allowed") == "on",
        }
        if not values["name"] or len(values["name"]) > NAME_MAX:
            errors["name"] = _("Enter a name of at most %(max)d characters.", max=NAME_MAX)
        if values["entry_mode"] not in ENTRY_MODES:
            errors["entry_mode"] = _("Choose how often a ticket may go in.")
        if not errors:
            try:
                gate_service.save_gate(event, values)
            except ApiError as exc:
                errors["name"] = str(exc.description)
            else:
                flash(_("The gate “%(name)s” is added.", name=values["name"]))
                return redirect(url_for("scanner_manage.event_gates", event_id=event.id))
        status = INVALID
    return render_template("scanner/gates.html", event=event, gates=gate_service.gates_of(event.id), values=values,
                           errors=errors), status


@blueprint.app_template_filter("scanner_when")
def when_in(value: datetime, tz: str | None = None) -> str:
    """A moment in ``tz`` (the organisation's time zone if None), short, in the visitor's language."""
    zone = zoneinfo.ZoneInfo(tz or general_settings().timezone)
    return format_datetime(value, "short", tzinfo=zone, locale=str(get_locale() or "en"))


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
