"""The financial report pages: ``/manage/payments/reports`` (figures for a period and an event) and its CSV.

The filters travel in the query string (``from``, ``to``: days in the tenant's time zone; ``event``), so a
report can be bookmarked and its CSV holds exactly what the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _

from bilten_core.auth.authorize import require_permission
from bilten_core.db import db
from plugins.payments.permissions import PAYMENTS_VIEW
from plugins.payments.report_csv import report_csv
from plugins.payments.reports import (
    Period,
    PeriodError,
    event_id_of,
    financial_report,
    reconciliation_overview,
    report_period,
)
from plugins.ticketing.models import Event
from plugins.ticketing.order_admin import csv_download
from plugins.ticketing.payments import providers

EVENT_CHOICES = 500

blueprint = Blueprint("payments_reports", __name__, url_prefix="/manage/payments/reports", template_folder="templates")


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # money figures: no shared or back-button caches
    return response


@dataclass
class Filters:
    values: dict[str, str]
    errors: dict[str, list[str]] = field(default_factory=dict)
    period: Period | None = None
    event_id: str | None = None


def _day(name: str, errors: dict[str, list[str]]) -> date | None:
    text = request.args.get(name, "").strip()[:40]
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = [_("Enter a date such as 2026-03-31.")]
        return None


def _filters() -> Filters:
    found = Filters(values={name: request.args.get(name, "")[:40] for name in ("from", "to", "event")})
    first, last = _day("from", found.errors), _day("to", found.errors)
    if found.values["event"]:
        found.event_id = event_id_of(found.values["event"])
        if found.event_id is None:
            found.errors["event"] = [_("Choose one of your events.")]
        else:
            found.values["event"] = found.event_id
    if not found.errors:
        try:
            found.period = report_period(first, last)
        except PeriodError as exc:
            found.errors[exc.field] = [exc.message]
    if found.period is not None:
        found.values["from"], found.values["to"] = found.period.first_day.isoformat(), found.period.last_day.isoformat()
    return found


def _events() -> list[tuple[str, str]]:
    rows = db.session.execute(
        sa.select(Event.id, Event.title).order_by(Event.starts_at.desc(), Event.id).limit(EVENT_CHOICES)
    )
    return [(str(event_id), title) for event_id, title in rows]


@blueprint.get("")
@require_permission(PAYMENTS_VIEW)
def index() -> Any:
    filters = _filters()
    if filters.period is None:
        return _refused(filters)
    return render_template(
        "payments/report_index.html", filters=filters, events=_events(), step=None, provider_titles=_titles(),
        report=financial_report(filters.period, filters.event_id), overview=reconciliation_overview(filters.event_id),
    )


def _titles() -> dict[str, str]:
    return {name: str(provider.title) for name, provider in providers().items()}


def _refused(filters: Filters) -> tuple[str, int]:
    return render_template(
        "payments/report_index.html", filters=filters, events=_events(), step=None, report=None, overview=None,
        error=_("The report could not be made; check the fields marked."),
    ), 422


@blueprint.get("/export.csv")
@require_permission(PAYMENTS_VIEW)
def export() -> Any:
    filters = _filters()
    if filters.period is None:
        return _refused(filters)
    period = filters.period
    name = f"payments-{period.first_day.isoformat()}-{period.last_day.isoformat()}.csv"
    return csv_download(report_csv(financial_report(period, filters.event_id)), name)
