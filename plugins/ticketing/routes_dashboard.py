"""The organiser's event dashboard: ``/manage/events/<id>/dashboard`` on the tenant's host.

Summary cards, the figures by ticket type and quota, and orders over time as a bar chart drawn on
the server as inline SVG (no script), with the same numbers in a table for screen readers and for
anyone who wants them exact. The figures come from :mod:`plugins.ticketing.event_stats`. For a
cancelled event, how far refunding its orders has come, and a button to run the refunds again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from babel.dates import format_date, format_time
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from bilten_core.auth.authorize import has_permission, require_permission
from bilten_core.auth.identity import current_identity
from bilten_core.db import db
from bilten_core.tenancy.context import current_tenant_or_none
from plugins.ticketing.event_cancellation import progress_of, start_refunds
from plugins.ticketing.event_stats import DAY, Bucket, EventStats, event_stats
from plugins.ticketing.plugin import EVENTS_PUBLISH, ORDERS_VIEW
from plugins.ticketing.routes_manage import event_or_404
from plugins.ticketing.storefront import format_money

blueprint = Blueprint("ticketing_dashboard", __name__, url_prefix="/manage/events", template_folder="templates")

# The chart's own coordinates (its viewBox); the browser scales it to the width of the screen.
CHART_WIDTH = 600
CHART_HEIGHT = 200
BAR_SHARE = 0.8  # of each slot; the rest is the gap between bars


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # "12 Mar 2026: 3 orders, €75.00"


@dataclass(frozen=True)
class Period:
    label: str
    orders: int
    revenue: str


@dataclass(frozen=True)
class Chart:
    """Orders over time, ready to draw: bars in viewBox units, a sentence that names the chart, a table."""

    title: str
    name: str
    bars: list[Bar]
    periods: list[Period]
    first: str
    last: str


@blueprint.after_request
def _private_headers(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"  # sales figures: no shared or back-button caches
    return response


@blueprint.before_request
def _tenant_only() -> None:
    if current_tenant_or_none() is None:
        abort(404)


@blueprint.app_template_global("may_see_sales")
def may_see_sales() -> bool:
    """Whether the visitor may open dashboards here (the event pages show the link only then)."""
    return has_permission(current_identity(), ORDERS_VIEW, current_tenant_or_none())


def _period_label(bucket: Bucket, unit: str) -> str:
    locale = str(get_locale() or "en")
    day = format_date(bucket.starts_at, "medium", locale=locale)
    return day if unit == DAY else f"{day}, {format_time(bucket.starts_at, 'short', locale=locale)}"


def _orders_label(count: int) -> str:
    return ngettext("%(num)d order", "%(num)d orders", count)


def chart(stats: EventStats) -> Chart | None:
    """The orders-over-time chart of ``stats``, or None before there is any period to show."""
    if not stats.buckets:
        return None
    periods = [
        Period(_period_label(bucket, stats.bucket_unit), bucket.orders,
               format_money(bucket.revenue_minor, stats.currency))
        for bucket in stats.buckets
    ]
    most = max(bucket.orders for bucket in stats.buckets)
    slot = CHART_WIDTH / len(periods)
    bars = [
        Bar(
            x=round(index * slot + slot * (1 - BAR_SHARE) / 2, 2),
            y=round(CHART_HEIGHT - CHART_HEIGHT * period.orders / most, 2),
            width=round(slot * BAR_SHARE, 2),
            height=round(CHART_HEIGHT * period.orders / most, 2),
            label=f"{period.label}: {_orders_label(period.orders)}, {period.revenue}",
        )
        for index, period in enumerate(periods)
        if period.orders
    ]
    total = sum(period.orders for period in periods)
    span = {"first": periods[0].label, "last": periods[-1].label, "total": _orders_label(total),
            "most": _orders_label(most)}
    if stats.bucket_unit == DAY:
        title = _("Orders per day")
        name = (_("Orders per day from %(first)s to %(last)s: %(total)s in all, %(most)s on the busiest day.",
                  **span) if total else _("Orders per day from %(first)s to %(last)s: none yet.", **span))
    else:
        title = _("Orders per hour")
        name = (_("Orders per hour from %(first)s to %(last)s: %(total)s in all, %(most)s in the busiest hour.",
                  **span) if total else _("Orders per hour from %(first)s to %(last)s: none yet.", **span))
    return Chart(title=title, name=name, bars=bars, periods=periods, first=periods[0].label, last=periods[-1].label)


@blueprint.get("/<uuid:event_id>/dashboard")
@require_permission(ORDERS_VIEW)
def dashboard(event_id: UUID) -> Any:
    event = event_or_404(event_id)
    stats = event_stats(event)
    return render_template(
        "ticketing/manage/dashboard.html", event=event, stats=stats, chart=chart(stats), step=None,
        chart_width=CHART_WIDTH, chart_height=CHART_HEIGHT,
        money=lambda minor: format_money(minor, stats.currency),
        cancellation=progress_of(event.id),
        may_rerun=has_permission(current_identity(), EVENTS_PUBLISH, current_tenant_or_none()),
    )


@blueprint.post("/<uuid:event_id>/cancellation/rerun")
@require_permission(EVENTS_PUBLISH)
def rerun_cancellation(event_id: UUID) -> Any:
    """Run the refunds of a cancelled event again (orders whose refund failed are retried)."""
    event = event_or_404(event_id)
    if progress_of(event.id) is None:
        abort(404)
    start_refunds(event)
    db.session.commit()
    flash(_("The refunds run again in the background; this page shows how far they are."))
    return redirect(url_for(".dashboard", event_id=event.id) + "#cancellation")
