"""The financial report API: ``GET /api/v1/payments/reports?from=&to=&event_id=``.

Same figures as the report page (:mod:`plugins.payments.reports`), for whoever holds ``payments.view``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from bilten_core.auth.authorize import require_permission
from bilten_core.errors import ApiError
from plugins.payments.permissions import PAYMENTS_VIEW
from plugins.payments.reports import (
    MAX_DAYS,
    PeriodError,
    event_id_of,
    financial_report,
    reconciliation_overview,
    report_period,
)

blueprint = Blueprint(
    "payments_reports_api", __name__, url_prefix="/payments",
    description="Financial reports: sales, fees, refunds, disputes and net per period and event.",
)


class ReportQuerySchema(Schema):
    first_day = fields.Date(data_key="from", load_default=None,
                            metadata={"description": "First day (tenant's time zone); default: this month's first"})
    last_day = fields.Date(data_key="to", load_default=None,
                           metadata={"description": f"Last day, included; default: today; at most {MAX_DAYS} days"})
    event_id = fields.UUID(load_default=None, metadata={"description": "Only this event's orders"})


class ReportFiguresSchema(Schema):
    currency = fields.String(required=True)
    orders_paid = fields.Integer(required=True, metadata={"description": "Orders whose payment arrived in the period"})
    gross_minor = fields.Integer(required=True, metadata={"description": "What their buyers paid"})
    gross_by_provider = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    platform_fees_minor = fields.Integer(required=True)
    provider_fees_minor = fields.Integer(required=True, metadata={"description": "An estimate"})
    refunds_succeeded_minor = fields.Integer(required=True)
    refunds_pending_minor = fields.Integer(required=True)
    disputes_open_minor = fields.Integer(required=True)
    disputes_lost_minor = fields.Integer(required=True)
    net_minor = fields.Integer(
        required=True, metadata={"description": "gross - platform fees - provider fees - refunds - disputes lost"}
    )


class ReportEventFiguresSchema(Schema):
    event_id = fields.String(required=True)
    title = fields.String(required=True)
    figures = fields.List(fields.Nested(ReportFiguresSchema), required=True)


class ReconciliationRunSchema(Schema):
    occurred_at = fields.DateTime(required=True)
    counts = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)


class ReportFlaggedOrderSchema(Schema):
    order_id = fields.String(required=True)
    code = fields.String(required=True)
    event_id = fields.String(required=True)
    total_minor = fields.Integer(required=True)
    currency = fields.String(required=True)
    flagged_at = fields.DateTime(required=True)


class ReportReconciliationSchema(Schema):
    runs = fields.List(fields.Nested(ReconciliationRunSchema), required=True, metadata={"description": "Newest first"})
    flagged = fields.List(
        fields.Nested(ReportFlaggedOrderSchema), required=True,
        metadata={"description": "Orders issued as paid by card with no card payment found"},
    )


class FinancialReportSchema(Schema):
    first_day = fields.Date(data_key="from", required=True)
    last_day = fields.Date(data_key="to", required=True)
    timezone = fields.String(required=True)
    event_id = fields.String(allow_none=True)
    totals = fields.List(
        fields.Nested(ReportFiguresSchema), required=True, metadata={"description": "One per currency"}
    )
    events = fields.List(fields.Nested(ReportEventFiguresSchema), required=True)
    reconciliation = fields.Nested(ReportReconciliationSchema, required=True)


@blueprint.route("/reports")
@require_permission(PAYMENTS_VIEW)
@blueprint.arguments(ReportQuerySchema, location="query")
@blueprint.response(200, FinancialReportSchema)
@blueprint.alt_response(404, schema="Error", description="No such event")
@blueprint.alt_response(422, schema="Error", description="A date that is not one, or a period that cannot be")
def get_report(query: dict[str, Any]) -> dict[str, Any]:
    """Orders paid, gross by provider, fees, refunds, disputes and net, per currency, for a period of days."""
    event_id = None
    if query["event_id"] is not None:
        event_id = event_id_of(str(query["event_id"]))
        if event_id is None:
            raise ApiError(404, "not_found", _("This event does not exist."))
    try:
        period = report_period(query["first_day"], query["last_day"])
    except PeriodError as exc:
        raise ApiError(422, "invalid_period", exc.message, {"query": {exc.field: [exc.message]}}) from None
    report = financial_report(period, event_id)
    return {
        "first_day": period.first_day, "last_day": period.last_day, "timezone": period.timezone,
        "event_id": event_id, "totals": report.totals, "events": report.events,
        "reconciliation": reconciliation_overview(event_id),
    }
