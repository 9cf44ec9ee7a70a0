"""The financial report as CSV: one line per event and currency, then the totals per currency."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask_babel import gettext as _

from plugins.payments.reports import Figures, FinancialReport
from plugins.ticketing.order_admin import csv_cell
from plugins.ticketing.storefront import money_amount


def _amounts(figures: Figures, providers: list[str]) -> list[Any]:
    money = [figures.gross_minor, *(figures.gross_by_provider.get(name, 0) for name in providers),
             figures.platform_fees_minor, figures.provider_fees_minor, figures.refunds_succeeded_minor,
             figures.refunds_pending_minor, figures.disputes_open_minor, figures.disputes_lost_minor,
             figures.net_minor]
    return [figures.currency, figures.orders_paid, *(money_amount(minor, figures.currency) for minor in money)]


def report_csv(report: FinancialReport) -> Iterator[str]:
    """The report one CSV line at a time (header first), as text a spreadsheet shows rather than runs."""
    providers = report.providers
    header = [_("Event"), _("Event id"), _("Currency"), _("Orders paid"), _("Gross"),
              *(_("Gross: %(provider)s", provider=name) for name in providers), _("Platform fees"),
              _("Provider fees (estimate)"), _("Refunds succeeded"), _("Refunds pending"), _("Disputes open"),
              _("Disputes lost"), _("Net")]
    rows: list[list[Any]] = [header]
    for event in report.events:
        rows.extend([event.title, event.event_id, *_amounts(figures, providers)] for figures in event.figures)
    rows.extend([_("All events"), "", *_amounts(figures, providers)] for figures in report.totals)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
