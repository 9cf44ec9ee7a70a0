"""Orders as staff see them: search, history, invoice payment, cancellation, and who may do what."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from bilten_core.db import db
from bilten_core.testing import assert_api_error, host_of


def _buy(client, tenant, type_id, quantity=1, email="ann@example.org", name="Ann"):
    reserved = client.post(
        "/api/v1/reservations", json={"items": [{"ticket_type_id": type_id, "quantity": quantity}]},
        headers=host_of(tenant),
    )
    assert reserved.status_code == 201, reserved.text
    ordered = client.post(
        "/api/v1/orders", json={"reservation_id": reserved.get_json()["id"], "email": email, "name": name},
        headers=host_of(tenant),
    )
    assert ordered.status_code == 201, ordered.text
    return ordered.get_json()


def _available(client, tenant, event_id):
    return client.get(f"/api/v1/events/{event_id}/availability", headers=host_of(tenant)).get_json()["ticket_types"]


def test_invoice_order_is_paid_by_staff_and_cancelled_orders_free_their_tickets(
    client, tenant, catalog, staff_headers
):
    event_id, _quota, type_id = catalog.simple(size=5, price_minor=1000)
    order = _buy(client, tenant, type_id, 2)
    assert order["status"] == "awaiting_payment" and order["payment_provider"] == "invoice"
    assert order["payment_due_at"] and order["total_minor"] == 2000
    assert _available(client, tenant, event_id) == {type_id: 3}
    admin = staff_headers(tenant, "admin")

    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={"reference": "bank 42"}, headers=admin)
    assert paid.status_code == 200, paid.text
    assert paid.get_json()["status"] == "paid"
    again = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
    assert_api_error(again, 409, "illegal_transition")

    cancelled = client.post(f"/api/v1/orders/{order['code']}/cancel", json={"reason": "asked"}, headers=admin)
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.get_json()
    assert body["status"] == "cancelled"
    assert all(not t["valid"] for t in body["tickets"])
    assert [(h["action"], h["to_status"]) for h in body["history"]] == [
        ("created", "reserved"), ("awaiting_payment", "awaiting_payment"), ("paid", "paid"),
        ("cancelled", "cancelled"), ("released_places", None),
    ]
    assert _available(client, tenant, event_id) == {type_id: 5}
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/cancel", json={}, headers=admin), 409,
                     "illegal_transition")

    def announced():
        from bilten_core.outbox import OutboxRow

        return sorted(db.session.scalars(sa.select(OutboxRow.name).where(
            OutboxRow.tenant_id == tenant.id, OutboxRow.name.like("ticketing.order_%"))))

    assert catalog.run(announced) == ["ticketing.order_cancelled", "ticketing.order_created", "ticketing.order_paid"]


def test_staff_search_and_pagination(client, tenant, catalog, staff_headers):
    _event, _quota, type_id = catalog.simple(size=40, kind="free", price_minor=0)
    codes = [_buy(client, tenant, type_id, email=f"buyer{i}@example.org", name=f"Buyer {i}")["code"] for i in range(3)]
    headers = staff_headers(tenant, "finance")
    listed = client.get("/api/v1/orders?page_size=2", headers=headers)
    assert listed.status_code == 200, listed.text
    assert [o["code"] for o in listed.get_json()] == codes[::-1][:2]
    found = client.get("/api/v1/orders?q=buyer1@", headers=headers).get_json()
    assert [o["code"] for o in found] == [codes[1]]
    assert client.get(f"/api/v1/orders?q={codes[2].lower()}", headers=headers).get_json()[0]["code"] == codes[2]
    assert client.get("/api/v1/orders?q=%25", headers=headers).get_json() == []
    assert_api_error(client.get("/api/v1/orders?page_size=100000", headers=headers), 422, "unprocessable_entity")
    assert_api_error(client.get("/api/v1/orders?status=lost", headers=headers), 422, "unprocessable_entity")
    history = client.get(f"/api/v1/orders/{codes[0]}/history", headers=headers).get_json()["history"]
    assert [h["action"] for h in history] == ["created", "paid"]


@pytest.mark.parametrize("role", [None, "finance"])
def test_only_staff_with_the_permission_may_cancel(client, tenant, catalog, staff_headers, role):
    event_id, _quota, type_id = catalog.simple(size=3, kind="free", price_minor=0)
    order = _buy(client, tenant, type_id)
    headers = staff_headers(tenant, role) if role else host_of(tenant)
    response = client.post(f"/api/v1/orders/{order['code']}/cancel", json={}, headers=headers)
    if role is None:
        assert_api_error(response, 401, "authentication_required")
        assert_api_error(client.get("/api/v1/orders", headers=headers), 401, "authentication_required")
    else:
        assert_api_error(response, 403, "permission_denied")
    assert _available(client, tenant, event_id) == {type_id: 2}


def test_staff_of_another_tenant_cannot_see_or_cancel_orders(
    client, tenant, catalog, staff_headers, make_tenant
):
    _event, _quota, type_id = catalog.simple(size=3, kind="free", price_minor=0)
    order = _buy(client, tenant, type_id)
    other = make_tenant("tk-other")
    # A token of the other tenant sent to this tenant's host is refused; on its own host the order does not exist.
    foreign = staff_headers(other, "admin")
    assert client.get("/api/v1/orders", headers={**foreign, **host_of(tenant)}).status_code == 401
    assert client.get("/api/v1/orders", headers=foreign).get_json() == []
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/cancel", json={}, headers=foreign), 404,
                     "order_not_found")
    lookup = client.get(f"/api/v1/orders/{order['code']}?email=ann@example.org", headers=host_of(other))
    assert_api_error(lookup, 404, "order_not_found")


def test_shrinking_a_quota_below_what_is_taken_is_refused(client, tenant, catalog):
    from sqlalchemy.exc import IntegrityError

    from plugins.ticketing.models import Quota

    event_id, quota_id, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    _buy(client, tenant, type_id, 3)

    def resize(size, held=0):
        quota = db.session.get(Quota, quota_id)
        quota.size, quota.held = size, held
        db.session.commit()

    catalog.run(lambda: resize(8))
    assert _available(client, tenant, event_id) == {type_id: 5}
    catalog.run(lambda: resize(8, held=4))
    assert _available(client, tenant, event_id) == {type_id: 1}

    def too_small():
        with pytest.raises(IntegrityError, match="reserved or sold"):
            resize(2)
        db.session.rollback()

    catalog.run(too_small)
    assert _available(client, tenant, event_id) == {type_id: 1}
