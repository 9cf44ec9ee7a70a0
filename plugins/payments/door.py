"""Pay at the door: the order keeps its tickets until the event ends, and staff settle it on the night.

Staff record the payment with the order page's "Mark as paid" action when the buyer arrives, however
late in the event. An order still unpaid when the event ends expires like any unpaid order.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext

from bilten_core.db import db
from bilten_core.errors import ApiError
from plugins.ticketing.models import Event
from plugins.ticketing.orders import Order
from plugins.ticketing.payments import PaymentStart

DOOR = "door"


class DoorProvider:
    name = DOOR
    title = lazy_gettext("Pay at the door")

    def accepts(self, total_minor: int) -> bool:
        return total_minor > 0

    def start(self, order_id: str, total_minor: int, now: datetime, payment_days: int) -> PaymentStart:
        ends_at = _event_end(order_id)
        if ends_at <= now:
            raise ApiError(
                422, "payment_provider_refused", _("Paying at the door is not possible once the event is over."),
                {"payment_provider": DOOR},
            )
        return PaymentStart(paid=False, due_at=ends_at)


def _event_end(order_id: str) -> datetime:
    """When the event of the order being placed ends.

    Checkout calls a provider before the order's first flush, so the order is usually not in the database
    yet: it is looked for among the session's new objects first (an order approved after review is an
    ordinary one), and nothing is flushed while the event is read (a flush now would write the new order
    before it took its final state, and then again).
    """
    session = db.session()
    with session.no_autoflush:
        order = next((item for item in session.new if isinstance(item, Order) and item.id == order_id), None)
        if order is None:
            order = session.get(Order, order_id)
        if order is None:
            raise LookupError(f"no order {order_id} in this transaction")
        event = session.get(Event, order.event_id)
    if event is None:
        raise LookupError(f"no event {order.event_id} for order {order_id}")
    return event.ends_at
