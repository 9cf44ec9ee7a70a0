"""What the lines the payments plugin writes to an order's history are called on the staff order page."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext

from plugins.payments.bank_import import BANK_TRANSFER_NOTE
from plugins.payments.disputes import LOST, NOTE_CLOSED, NOTE_OPENED, WON
from plugins.payments.reconciliation import FLAG_ISSUED_NOT_PAID
from plugins.payments.refund_mail import MAILED
from plugins.payments.settlement import REFUNDED_LATE, REFUNDED_MISMATCH, REFUNDED_TWICE_PAID

LABELS: dict[str, Any] = {
    "payment_started": lazy_gettext("Went to the payment page"),
    "payment_failed": lazy_gettext("Payment declined"),
    "payment_mismatch": lazy_gettext("Payment did not match the order"),
    "paid_late": lazy_gettext("Paid after the deadline; tickets issued"),
    "late_payment_unplaced": lazy_gettext("Paid after the deadline; the tickets were gone"),
    REFUNDED_LATE: lazy_gettext("Late payment refunded automatically"),
    REFUNDED_TWICE_PAID: lazy_gettext("Second payment refunded automatically"),
    REFUNDED_MISMATCH: lazy_gettext("Mismatched payment refunded automatically"),
    MAILED: lazy_gettext("Refund explained to the buyer"),
    "refund_succeeded": lazy_gettext("Refund confirmed by the payment provider"),
    "refund_failed": lazy_gettext("Refund failed at the payment provider"),
    FLAG_ISSUED_NOT_PAID: lazy_gettext("Flagged: issued without a card payment"),
    BANK_TRANSFER_NOTE: lazy_gettext("Bank transfer not applied"),
    NOTE_OPENED: lazy_gettext("Payment disputed"),
    NOTE_CLOSED[WON]: lazy_gettext("Dispute won"),
    NOTE_CLOSED[LOST]: lazy_gettext("Dispute lost"),
}
