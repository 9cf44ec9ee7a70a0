"""Cancelling an event refunds every order: a background job settles its orders one by one.

When staff cancel an event, :func:`start_refunds` records the cancellation's progress row and queues
``ticketing.refund_cancelled_event`` once the cancellation commits. The job refunds every paid (or
partly refunded) order in full through its provider (:func:`plugins.ticketing.refunds.refund_everything`,
keyed ``event-cancel-<event id>-<order id>``) and cancels orders still awaiting payment or review,
each order in a transaction of its own together with the progress it makes. A refusal of one
order's provider is recorded in the progress and the job goes on with the rest; running the job
again (a retry, or staff asking for it) retries only what is still open and refunds nothing twice.
When it ends, the result goes to the audit trail and to the organisation's staff.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
import structlog
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.orm import Mapped, mapped_column

from bilten_core import audit
from bilten_core.db import TenantModel, db
from bilten_core.errors import ApiError
from bilten_core.jobs import tenant_job
from bilten_core.notifications import notify_staff
from plugins.ticketing import checkout, inventory, orders, refunds
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order

log = structlog.get_logger("bilten.ticketing.event_cancellation")

QUEUED = "queued"
RUNNING = "running"
FINISHED = "finished"
# Orders of a cancelled event that still hold money or places.
PAID_STATUSES = refunds.REFUNDABLE_STATUSES
UNPAID_STATUSES = (orders.AWAITING_PAYMENT, orders.HELD)
FINISHED_KIND = "ticketing.event_cancellation_finished"
CANCEL_ACTION = "event_cancelled"


class EventCancellation(TenantModel):
    """How far refunding the orders of a cancelled event has come."""

    __tablename__ = "event_cancellations"

    event_id: Mapped[str] = mapped_column(sa.ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(sa.String(16))
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    done: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    refunded_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    failures: Mapped[list[dict[str, Any]]] = mapped_column(pg.JSONB, default=list)
    runs: Mapped[int] = mapped_column(sa.Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=sa.func.now(), onupdate=sa.func.now()
    )


def refund_key(event_id: str, order_id: str) -> str:
    """What the refund of one order of a cancelled event is keyed by: the same order is refunded once."""
    return f"event-cancel-{event_id}-{order_id}"


def progress_of(event_id: str) -> EventCancellation | None:
    """The progress of refunding a cancelled event's orders, or None when the event was never cancelled."""
    return db.session.get(EventCancellation, event_id)


def _open_order_ids(event_id: str) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Order.id)
            .where(Order.event_id == event_id, Order.status.in_((*PAID_STATUSES, *UNPAID_STATUSES)))
            .order_by(Order.created_at, Order.id)
        )
    )


def start_refunds(event: Event) -> None:
    """Record that the event's orders are to be refunded and queue the job once the caller commits."""
    progress = progress_of(event.id)
    if progress is None:
        progress = EventCancellation(event_id=event.id, status=QUEUED, failures=[], done=0, failed=0,
                                     refunded_minor=0, runs=0)
        db.session.add(progress)
    else:
        progress.status = QUEUED
    progress.total = progress.done + len(_open_order_ids(event.id))
    db.session.flush()
    refund_cancelled_event.after_commit(event.id)


def _locked_progress(event_id: str) -> EventCancellation:
    progress = db.session.get(EventCancellation, event_id, with_for_update=True, populate_existing=True)
    assert progress is not None  # created before the job is queued, and kept while the event exists
    return progress


@tenant_job(name="ticketing.refund_cancelled_event")
def refund_cancelled_event(event_id: str) -> None:
    """Refund or cancel every open order of a cancelled event; safe to run again."""
    event = db.session.get(Event, event_id)
    if event is None or event.status != "cancelled" or progress_of(event_id) is None:
        return  # not this tenant's event, or not cancelled: nothing to refund
    open_ids = _open_order_ids(event_id)
    progress = _locked_progress(event_id)
    progress.status = RUNNING
    progress.runs += 1
    progress.total = progress.done + len(open_ids)
    progress.failed = 0
    progress.failures = []
    progress.finished_at = None
    db.session.commit()
    reason = _("The event was cancelled.")
    for order_id in open_ids:
        _settle(event_id, order_id, reason)
    _finish(event)


def _settle(event_id: str, order_id: str, reason: str) -> None:
    """Refund or cancel one order, counting it in the progress in the same transaction.

    Only the run that changes the order counts it: an order settled meanwhile (by a twin run, or
    by staff) is left as it is.
    """
    order = db.session.get(Order, order_id)
    if order is None:
        return
    try:
        db.session.refresh(order, with_for_update=True)
        if order.status in PAID_STATUSES:
            refund = refunds.refund_everything(order, key=refund_key(event_id, order.id), reason=reason)
            if refund is not None:
                _count_done(event_id, refund.amount_minor)
            db.session.commit()
        elif order.status in UNPAID_STATUSES:
            _cancel_unpaid(event_id, order, reason)
        else:
            db.session.commit()  # nothing to do; let go of the order's row
    except ApiError as exc:
        db.session.rollback()
        log.warning("event_cancellation.order_failed", event_id=event_id, order_id=order_id, code=exc.error_code)
        progress = _locked_progress(event_id)
        progress.failed += 1
        progress.failures = [*progress.failures, {
            "order_id": order_id, "code": order.code, "error": exc.error_code, "message": exc.description,
        }]
        db.session.commit()


def _cancel_unpaid(event_id: str, order: Order, reason: str) -> None:
    _count_done(event_id, 0)
    # An order whose deadline passed expires instead (holding nothing any more); either commits the count.
    checkout.expire_if_due(order)
    if order.status in UNPAID_STATUSES:
        checkout.cancel_order(order, reason, action=CANCEL_ACTION)


def _count_done(event_id: str, refunded_minor: int) -> None:
    progress = _locked_progress(event_id)
    progress.done += 1
    progress.refunded_minor += refunded_minor


def _finish(event: Event) -> None:
    """Close the run: its result to the audit trail and to the staff (committed by the job)."""
    progress = _locked_progress(event.id)
    # Orders settled by staff while the job ran are neither done nor failed here.
    progress.total = progress.done + progress.failed
    progress.status = FINISHED
    progress.finished_at = inventory.db_now()
    audit.record("event.cancellation_refunds_finished", "event", event.id, {
        "total": progress.total, "done": progress.done, "failed": progress.failed,
        "refunded_minor": progress.refunded_minor, "failed_orders": [item["code"] for item in progress.failures],
    })
    if progress.failed:
        title = ngettext(
            "Cancelled event %(title)s: %(num)d order could not be refunded",
            "Cancelled event %(title)s: %(num)d orders could not be refunded",
            progress.failed, title=event.title,
        )
        body = _("Orders: %(codes)s. Run the refunds again from the event's sales page once the payment "
                 "provider answers, or refund these orders by hand.",
                 codes=", ".join(item["code"] for item in progress.failures))
    else:
        title = _("Cancelled event %(title)s: every order is refunded or cancelled", title=event.title)
        body = ngettext("%(num)d order settled.", "%(num)d orders settled.", progress.done)
    notify_staff(FINISHED_KIND, title, body, link=f"/manage/events/{event.id}/dashboard")
