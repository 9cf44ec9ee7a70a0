"""What the buyer's payment pages share: the order a URL names, and the way back to it."""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort, redirect, url_for

from bilten_core.db import db
from plugins.ticketing.orders import Order


def order_or_404(order_id: str) -> Order:
    """The current tenant's order with this id; a 404 for anything else, a malformed id included."""
    try:
        key = str(uuid.UUID(order_id))
    except ValueError:
        abort(404)
    order = db.session.get(Order, key)
    if order is None:
        abort(404)
    return order


def back_to_order(order: Order) -> Any:
    """Send the buyer to the order's page on the storefront, which says where its payment stands."""
    return redirect(url_for("storefront.order_placed", reservation_id=order.reservation_id), 303)
