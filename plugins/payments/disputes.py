"""Disputes (chargebacks) of card payments, from Stripe's ``charge.dispute.*`` events.

Each event is applied in the tenant of the connected account it happened on. The dispute's row is
made by the first event about it, whichever type that is (Stripe delivers in any order), and locked
by every event, so that two events of one dispute apply one after the other; an event older than the
newest one applied changes nothing. The state comes from Stripe itself, asked while the row is
locked, not from the event's payload. A closed dispute (won, lost) stays closed.

Opening is told to the organiser (a note in the order's history, an audit entry and a staff
notification); winning or losing is noted in the order's history. Tickets are not revoked: whether
a disputed order still admits anyone is the organiser's decision. Nothing here commits: the webhook
commits the effect with its event's row.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import stripe
from flask import url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy.dialects.postgresql import insert

from bilten_core import audit
from bilten_core.db import db
from bilten_core.general_settings import general_settings
from bilten_core.notifications import notify_staff
from plugins.payments.dispute_models import Dispute
from plugins.payments.models import PaymentAttempt
from plugins.payments.stripe_client import stripe_client
from plugins.ticketing import orders
from plugins.ticketing.orders import Order
from plugins.ticketing.storefront import format_money

OPEN_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "needs_response", "under_review"})
CLOSED_STATUSES = frozenset({"won", "lost", "warning_closed", "prevented"})
WON, LOST = "won", "lost"

# Outcomes, as recorded on the webhook's event row.
OPENED = "dispute_opened"
UPDATED = "dispute_updated"
UNCHANGED = "dispute_unchanged"
STALE = "stale"
UNKNOWN_PAYMENT = "unknown_payment"
UNKNOWN_STATUS = "dispute_status_unknown"
# Order history actions.
NOTE_OPENED = "dispute_opened"
NOTE_CLOSED = {WON: "dispute_won", LOST: "dispute_lost"}
NOTIFICATION_KIND = "payments.dispute_opened"


def apply_dispute_event(event: stripe.Event) -> str:
    """Bring the dispute an event names up to date with Stripe; returns the outcome (not committed).

    Raises ``stripe.StripeError`` (or ``StripeNotConfigured``) when Stripe cannot be asked: the
    webhook then rolls back and answers 503, so that Stripe delivers the event again.
    """
    payload = event.data.object
    attempt = db.session.scalar(
        sa.select(PaymentAttempt).where(PaymentAttempt.payment_reference == str(payload.payment_intent))
    )
    if attempt is None:
        return UNKNOWN_PAYMENT
    created = _insert_once(payload, attempt)
    dispute = db.session.scalar(
        sa.select(Dispute).where(Dispute.stripe_dispute_id == str(payload.id)).with_for_update()
    )
    assert dispute is not None  # inserted above, or by the transaction it waited for
    if not created and dispute.last_event_created is not None and event.created < dispute.last_event_created:
        return STALE
    current: Any = stripe_client().v1.disputes.retrieve(str(payload.id), options={"stripe_account": attempt.account})
    order = db.session.get(Order, attempt.order_id)
    assert order is not None  # the foreign key keeps it
    dispute.last_event_created = max(event.created, dispute.last_event_created or 0)
    dispute.evidence_due_by = _due_by(current)
    dispute.reason = str(getattr(current, "reason", "") or "")[:64]
    dispute.updated_at = datetime.now(UTC)
    if created:
        _opened(dispute, order)
    status = str(current.status)
    if status not in OPEN_STATUSES | CLOSED_STATUSES:
        return UNKNOWN_STATUS
    if status == dispute.status or dispute.status in CLOSED_STATUSES:
        return OPENED if created else UNCHANGED  # a closed dispute is never reopened
    dispute.status = status
    if status in NOTE_CLOSED:
        orders.note(order, NOTE_CLOSED[status], _details(dispute))
    audit.record("payments.dispute.status_changed", "dispute", dispute.stripe_dispute_id, {"status": status})
    return OPENED if created else UPDATED


def _insert_once(payload: Any, attempt: PaymentAttempt) -> bool:
    """Insert the dispute's row unless it exists; True when this call made it.

    A concurrent event of the same dispute waits here on the key until the first one commits or rolls back.
    """
    inserted = db.session.execute(
        insert(Dispute)
        .values(
            stripe_dispute_id=str(payload.id), attempt_id=attempt.id, order_id=attempt.order_id,
            amount_minor=int(payload.amount), currency=str(payload.currency).upper(),
            reason="", status=str(payload.status),
        )
        .on_conflict_do_nothing(index_elements=["stripe_dispute_id"])
        .returning(Dispute.id)
    ).first()
    return inserted is not None


def _due_by(dispute: Any) -> datetime | None:
    details = getattr(dispute, "evidence_details", None)
    due = getattr(details, "due_by", None) if details is not None else None
    return datetime.fromtimestamp(int(due), UTC) if due else None


def _details(dispute: Dispute) -> dict[str, Any]:
    return {"dispute": dispute.stripe_dispute_id, "amount_minor": dispute.amount_minor,
            "currency": dispute.currency, "reason": dispute.reason,
            "evidence_due_by": dispute.evidence_due_by.isoformat() if dispute.evidence_due_by else None}


def _opened(dispute: Dispute, order: Order) -> None:
    details = _details(dispute)
    orders.note(order, NOTE_OPENED, details)
    audit.record("payments.dispute.opened", "dispute", dispute.stripe_dispute_id, {"order_id": order.id, **details})
    settings = general_settings()
    with force_locale(settings.default_locale):
        amount = format_money(dispute.amount_minor, dispute.currency)
        due = (dispute.evidence_due_by.astimezone(ZoneInfo(settings.timezone)).strftime("%Y-%m-%d %H:%M")
               if dispute.evidence_due_by else _("no deadline given"))
        notify_staff(
            NOTIFICATION_KIND,
            _("A buyer disputed the card payment of order %(code)s", code=order.code),
            _("%(amount)s is disputed (reason: %(reason)s). Send Stripe your evidence by %(due)s (%(zone)s). "
              "The order's tickets stay valid unless you cancel them.",
              amount=amount, reason=dispute.reason or _("none given"), due=due, zone=settings.timezone),
            url_for("ticketing_orders_manage.order_detail", event_id=order.event_id, code=order.code),
        )
