"""Orders held for review, as the payments plugin's fraud rules hold them: every order of more than
two tickets per address (a tenant's "tickets per address per day" limit, with "hold for review" on)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bilten_core.db import db
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of

HELD_FROM = 3  # tickets in one order


def hold_big_orders(app: Flask, tenant: TenantInfo) -> None:
    """Have the tenant's fraud rules hold every order of :data:`HELD_FROM` tickets or more for review."""
    with app.app_context(), tenant_context(tenant):
        update_settings("payments_fraud", {"max_tickets_per_email_per_day": HELD_FROM - 1, "hold_for_review": True})
        db.session.commit()


def place(client: FlaskClient, tenant: TenantInfo, type_id: str, quantity: int, email: str) -> Any:
    """Reserve ``quantity`` tickets and place the order through the buyer's API; the order's response."""
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]})
    assert reserved.status_code == 201, reserved.text
    return client.post("/api/v1/orders", headers=host_of(tenant),
                       json={"reservation_id": reserved.get_json()["id"], "email": email, "name": "Ann Buyer"})


def pass_deadline(app: Flask, tenant: TenantInfo, code: str) -> None:
    """Time passes beyond the order's deadline (review or payment): its places' hold runs out."""
    from plugins.ticketing.inventory import InventoryPlace
    from plugins.ticketing.orders import Order
    from plugins.ticketing.reservations import Reservation

    with app.app_context(), tenant_context(tenant):
        order = db.session.scalars(sa.select(Order).where(Order.code == code)).one()
        past = sa.func.now() - timedelta(minutes=1)
        order.payment_due_at = past
        db.session.execute(sa.update(Reservation).where(Reservation.id == order.reservation_id)
                           .values(expires_at=past))
        db.session.execute(sa.update(InventoryPlace).where(InventoryPlace.reservation_id == order.reservation_id,
                                                           InventoryPlace.order_id.is_(None))
                           .values(held_until=past))
        db.session.commit()
