"""The live view of an event's door, ``/manage/scanner/events/<id>/live``, and its CSV of check-ins.

The figures come from :mod:`plugins.scanner.live`; arrivals are drawn on the server as inline SVG (no
script), with the same numbers in a table, like ticketing's dashboard. Everything needs
``scanner.manage``: the people who run the door.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from babel.dates import format_datetime, format_time
from flask import Blueprint, Response, abort, render_template
from flask_babel import get_locale, lazy_gettext, ngettext
from flask_babel import gettext as _

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant_or_none
from plugins.scanner.clock import db_now
from plugins.scanner.live import LiveFigures, Slot, check_in_rows, live_figures
from plugins.scanner.plugin import MANAGE
from plugins.ticketing.models import Event
from plugins.ticketing.order_admin import csv_cell, csv_download
from plugins.ticketing.storefront import event_zone

# The chart's own coordinates (its viewBox); the browser scales it to the width of the screen.
CHART_WIDTH = 600
CHART_HEIGHT = 200
BAR_SHARE = 0.8

# Why an offline admission was flagged, in words; the API gives the codes.
CONFLICT_REASONS = {
    "already_used": lazy_gettext("already inside when admitted here"),
    "admitted_again": lazy_gettext("admitted again afterwards elsewhere"),
    "revoked": lazy_gettext("cancelled, refunded or unpaid"),
    "not_admitted_here": lazy_gettext("not valid at this gate then"),
    "wrong_event": lazy_gettext("a ticket of another event"),
    "not_yet_valid": lazy_gettext("not valid yet"),
    "expired": lazy_gettext("expired"),
    "forged": lazy_gettext("forged code"),
    "unknown": lazy_gettext("not a ticket code"),
}

blueprint = Blueprint("scanner_live", __name__, url_prefix="/manage/scanner", template_folder="templates")


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


@blueprint.after_request
def _private(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # who came in, and when
    return response


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str


@dataclass(frozen=True)
class Chart:
    name: str
    bars: list[Bar]
    rows: list[tuple[str, int]]


def _slot_label(slot: Slot, event: Event, with_date: bool) -> str:
    """The slot's start in the event's time zone; with the date too when arrivals span more than one day."""
    zone, locale = event_zone(event), str(get_locale() or "en")
    if with_date:
        return str(format_datetime(slot.starts_at, "short", tzinfo=zone, locale=locale))
    return str(format_time(slot.starts_at, "short", tzinfo=zone, locale=locale))


def _arrivals_label(count: int) -> str:
    return ngettext("%(num)d arrival", "%(num)d arrivals", count)


def arrivals_chart(figures: LiveFigures, event: Event) -> Chart | None:
    """Arrivals per 15 minutes, ready to draw; None before anyone has arrived."""
    if not figures.slots:
        return None
    zone = event_zone(event)
    first_day, last_day = (figures.slots[end].starts_at.astimezone(zone).date() for end in (0, -1))
    with_date = first_day != last_day
    rows = [(_slot_label(slot, event, with_date), slot.arrivals) for slot in figures.slots]
    most = max(count for _label, count in rows)
    slot_width = CHART_WIDTH / len(rows)
    bars = [
        Bar(x=round(index * slot_width + slot_width * (1 - BAR_SHARE) / 2, 2),
            y=round(CHART_HEIGHT - CHART_HEIGHT * count / most, 2), width=round(slot_width * BAR_SHARE, 2),
            height=round(CHART_HEIGHT * count / most, 2), label=f"{label}: {_arrivals_label(count)}")
        for index, (label, count) in enumerate(rows) if count
    ]
    name = _("Arrivals per 15 minutes from %(first)s to %(last)s: %(total)s in all, %(most)s at the busiest.",
             first=rows[0][0], last=rows[-1][0], total=_arrivals_label(figures.arrivals),
             most=_arrivals_label(most))
    return Chart(name=name, bars=bars, rows=rows)


def _event_or_404(event_id: UUID) -> Event:
    event = db.session.get(Event, str(event_id))
    if event is None:
        abort(404)
    return event


@blueprint.get("/events/<uuid:event_id>/live")
@require_permission(MANAGE)
def live(event_id: UUID) -> Any:
    event = _event_or_404(event_id)
    figures = live_figures(event, db_now())
    return render_template("scanner/live.html", event=event, figures=figures,
                           chart=arrivals_chart(figures, event), chart_width=CHART_WIDTH,
                           chart_height=CHART_HEIGHT, zone=event.timezone, reasons=CONFLICT_REASONS)


@blueprint.get("/events/<uuid:event_id>/check-ins.csv")
@require_permission(MANAGE)
def check_ins_csv(event_id: UUID) -> Response:
    """Every check-in of the event; cells a spreadsheet would run as formulas are quoted."""
    event = _event_or_404(event_id)
    header = [_("Scanned at"), _("Received at"), _("Ticket"), _("Attendee"), _("Ticket type"), _("Order"),
              _("Gate"), _("Device"), _("Direction"), _("Result"), _("Online"), _("Conflict"), _("Conflict reason")]
    # The last column is the check-in's id, for reading in batches only.
    rows: Iterator[list[Any]] = ([*row[:-1]] for row in check_in_rows(str(event.id)))
    return csv_download(_csv_lines(header, rows), f"check-ins-{event.id}.csv")


def _csv_lines(header: list[str], rows: Iterator[list[Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in itertools.chain([header], rows):
        writer.writerow([csv_cell(value.isoformat() if isinstance(value, datetime) else value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
