"""Financial reports: what an organiser's sales brought in over a period, where it went, and what is left.

All amounts are integers in minor units, one set of figures per currency (orders keep the currency
they were placed in). A period is a range of days in the tenant's time zone (the ``general``
settings), both included. For each event, and for all of them together:

- **orders paid**: orders whose payment arrived in the period (``paid_at``), whatever happened since;
- **gross**: what their buyers paid, by payment provider: a card payment's charge (the tickets and
  any fees passed on to the buyer), else the order's total;
- **platform fees**: the application fees of their card payments;
- **provider fees**: an estimate of the card provider's fees (:func:`plugins.payments.fees.breakdown`
  with the platform's fee policy, fees passed on when the charge was more than the order's total);
- **refunds**: refunds made in the period, succeeded and pending apart (failed ones are not money);
- **disputes**: disputes opened in the period, the amounts still open and those lost;
- **net**: gross - platform fees - provider fees - refunds - disputes lost.

The reconciliation overview lists the latest reconciliation runs (``payments.reconciled`` audit
entries) and the orders reconciliation flagged as issued without a card payment behind them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask_babel import gettext as _

from bilten_core.audit import AuditEntry
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from plugins.payments import fees
from plugins.payments.dispute_models import Dispute
from plugins.payments.disputes import CLOSED_STATUSES, LOST
from plugins.payments.models import PaymentAttempt
from plugins.payments.platform_fees import platform_fees
from plugins.payments.reconciliation import FLAG_ISSUED_NOT_PAID
from plugins.payments.stripe_checkout import STRIPE, SUCCEEDED
from plugins.ticketing import refunds
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order, OrderHistory
from plugins.ticketing.refunds import Refund

# A year and a day covers any calendar year; longer periods belong in an export of several reports.
MAX_DAYS = 366
RECONCILIATION_RUNS = 10
FLAGGED_ORDERS = 50


class PeriodError(ValueError):
    """A period that cannot be reported on: ``field`` names the value, ``message`` says why (translated)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Period:
    """Days ``first_day`` to ``last_day`` (both included) in the time zone ``timezone``."""

    first_day: date
    last_day: date
    timezone: str

    @property
    def starts_at(self) -> datetime:
        return datetime.combine(self.first_day, time.min, ZoneInfo(self.timezone))

    @property
    def ends_at(self) -> datetime:
        """The first moment after the period."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, ZoneInfo(self.timezone))


def report_period(first_day: date | None, last_day: date | None, today: date | None = None) -> Period:
    """The period from ``first_day`` to ``last_day`` in the current tenant's time zone; by default this month
    so far. Raises :class:`PeriodError` for a period that ends before it starts or is longer than a year."""
    zone = general_settings().timezone
    today = today or datetime.now(ZoneInfo(zone)).date()
    last = last_day or max(today, first_day or today)
    first = first_day or last.replace(day=1)
    if last < first:
        raise PeriodError("to", _("The period ends before it starts."))
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError("to", _("A report covers at most %(days)d days.", days=MAX_DAYS))
    if last >= date.max - timedelta(days=1):
        raise PeriodError("to", _("That date is too far away."))
    return Period(first, last, zone)


@dataclass
class Figures:
    """One currency's figures, in its minor units."""

    currency: str
    orders_paid: int = 0
    gross_by_provider: dict[str, int] = field(default_factory=dict)
    platform_fees_minor: int = 0
    provider_fees_minor: int = 0
    refunds_succeeded_minor: int = 0
    refunds_pending_minor: int = 0
    disputes_open_minor: int = 0
    disputes_lost_minor: int = 0

    @property
    def gross_minor(self) -> int:
        return sum(self.gross_by_provider.values())

    @property
    def refunds_minor(self) -> int:
        return self.refunds_succeeded_minor + self.refunds_pending_minor

    @property
    def net_minor(self) -> int:
        return (self.gross_minor - self.platform_fees_minor - self.provider_fees_minor - self.refunds_minor
                - self.disputes_lost_minor)

    def add(self, other: Figures) -> None:
        self.orders_paid += other.orders_paid
        for provider, amount in other.gross_by_provider.items():
            self.gross_by_provider[provider] = self.gross_by_provider.get(provider, 0) + amount
        self.platform_fees_minor += other.platform_fees_minor
        self.provider_fees_minor += other.provider_fees_minor
        self.refunds_succeeded_minor += other.refunds_succeeded_minor
        self.refunds_pending_minor += other.refunds_pending_minor
        self.disputes_open_minor += other.disputes_open_minor
        self.disputes_lost_minor += other.disputes_lost_minor


@dataclass(frozen=True)
class EventFigures:
    event_id: str
    title: str
    figures: list[Figures]


@dataclass(frozen=True)
class FinancialReport:
    period: Period
    event_id: str | None
    totals: list[Figures]
    events: list[EventFigures]

    @property
    def providers(self) -> list[str]:
        """Every payment provider with money in the report, in name order."""
        return sorted({name for figures in self.totals for name in figures.gross_by_provider})


def _in(column: Any, period: Period) -> sa.ColumnElement[bool]:
    return sa.and_(column >= period.starts_at, column < period.ends_at)


def _of_event(event_id: str | None) -> sa.ColumnElement[bool]:
    return Order.event_id == event_id if event_id else sa.true()


def _provider_fee(total: int, charge: int, currency: str) -> int:
    policy = platform_fees().policy(pass_to_buyer=charge > total)
    return fees.breakdown(total, currency, policy).provider_fee_minor


def _add_payments(table: dict[tuple[str, str], Figures], period: Period, event_id: str | None) -> None:
    charge = PaymentAttempt.amount_minor
    rows = db.session.execute(
        sa.select(Order.event_id, Order.currency, Order.payment_provider, Order.total_minor, charge,
                  PaymentAttempt.application_fee_minor, sa.func.count())
        .outerjoin(PaymentAttempt, sa.and_(PaymentAttempt.order_id == Order.id, PaymentAttempt.status == SUCCEEDED))
        .where(Order.paid_at.is_not(None), _in(Order.paid_at, period), _of_event(event_id))
        .group_by(Order.event_id, Order.currency, Order.payment_provider, Order.total_minor, charge,
                  PaymentAttempt.application_fee_minor)
    )
    for event, currency, provider, total, paid, application_fee, count in rows:
        figures = table[(str(event), currency)]
        figures.orders_paid += count
        received = paid if paid is not None else total
        figures.gross_by_provider[provider] = figures.gross_by_provider.get(provider, 0) + received * count
        if paid is not None:
            figures.platform_fees_minor += (application_fee or 0) * count
            if provider == STRIPE:
                figures.provider_fees_minor += _provider_fee(total, paid, currency) * count


def _add_refunds(table: dict[tuple[str, str], Figures], period: Period, event_id: str | None) -> None:
    rows = db.session.execute(
        sa.select(Order.event_id, Refund.currency, Refund.status, sa.func.sum(Refund.amount_minor))
        .join(Order, Order.id == Refund.order_id)
        .where(Refund.status.in_((refunds.PENDING, refunds.SUCCEEDED)), _in(Refund.created_at, period),
               _of_event(event_id))
        .group_by(Order.event_id, Refund.currency, Refund.status)
    )
    for event, currency, status, amount in rows:
        figures = table[(str(event), currency)]
        if status == refunds.SUCCEEDED:
            figures.refunds_succeeded_minor += int(amount)
        else:
            figures.refunds_pending_minor += int(amount)


def _add_disputes(table: dict[tuple[str, str], Figures], period: Period, event_id: str | None) -> None:
    rows = db.session.execute(
        sa.select(Order.event_id, Dispute.currency, Dispute.status, sa.func.sum(Dispute.amount_minor))
        .join(Order, Order.id == Dispute.order_id)
        .where(_in(Dispute.created_at, period), _of_event(event_id))
        .group_by(Order.event_id, Dispute.currency, Dispute.status)
    )
    for event, currency, status, amount in rows:
        figures = table[(str(event), currency)]
        if status == LOST:
            figures.disputes_lost_minor += int(amount)
        elif status not in CLOSED_STATUSES:
            figures.disputes_open_minor += int(amount)


def event_id_of(text: str) -> str | None:
    """The id of the current tenant's event ``text`` names, or None when it names none."""
    try:
        event_id = str(uuid.UUID(text))
    except ValueError:
        return None
    return event_id if db.session.get(Event, event_id) is not None else None


def financial_report(period: Period, event_id: str | None = None) -> FinancialReport:
    """The current tenant's figures for ``period``, of one event or of all (see the module's docstring)."""
    table: dict[tuple[str, str], Figures] = defaultdict(lambda: Figures(""))
    for add in (_add_payments, _add_refunds, _add_disputes):
        add(table, period, event_id)
    titles = {
        str(event_id): title for event_id, title in db.session.execute(
            sa.select(Event.id, Event.title).where(Event.id.in_({event for event, _currency in table}))
        )
    } if table else {}
    by_event: dict[str, list[Figures]] = defaultdict(list)
    totals: dict[str, Figures] = {}
    for (event, currency), figures in sorted(table.items()):
        figures.currency = currency
        by_event[event].append(figures)
        totals.setdefault(currency, Figures(currency)).add(figures)
    events = sorted(
        (EventFigures(event, str(titles.get(event, "")), figures) for event, figures in by_event.items()),
        key=lambda item: (item.title.casefold(), item.event_id),
    )
    return FinancialReport(period, event_id, [totals[currency] for currency in sorted(totals)], events)


@dataclass(frozen=True)
class ReconciliationRun:
    occurred_at: datetime
    counts: dict[str, int]


@dataclass(frozen=True)
class FlaggedOrder:
    order_id: str
    code: str
    event_id: str
    total_minor: int
    currency: str
    flagged_at: datetime


@dataclass(frozen=True)
class ReconciliationOverview:
    runs: list[ReconciliationRun]
    flagged: list[FlaggedOrder]


def reconciliation_overview(event_id: str | None = None) -> ReconciliationOverview:
    """The latest reconciliation runs, newest first, and the orders flagged as issued but not paid by card."""
    entries = db.session.scalars(
        sa.select(AuditEntry).where(AuditEntry.action == "payments.reconciled")
        .order_by(AuditEntry.occurred_at.desc(), AuditEntry.id.desc()).limit(RECONCILIATION_RUNS)
    )
    runs = [
        ReconciliationRun(entry.occurred_at,
                          {key: int(value) for key, value in (entry.changes or {}).items() if isinstance(value, int)})
        for entry in entries
    ]
    flagged = [
        FlaggedOrder(str(order_id), code, str(event), int(total), currency, flagged_at)
        for order_id, code, event, total, currency, flagged_at in db.session.execute(
            sa.select(Order.id, Order.code, Order.event_id, Order.total_minor, Order.currency, OrderHistory.created_at)
            .join(OrderHistory, OrderHistory.order_id == Order.id)
            .where(OrderHistory.action == FLAG_ISSUED_NOT_PAID, _of_event(event_id))
            .order_by(OrderHistory.created_at.desc(), OrderHistory.id.desc()).limit(FLAGGED_ORDERS)
        )
    ]
    return ReconciliationOverview(runs, flagged)
