"""Paying at the door: the order keeps its tickets until the event ends, and staff settle it on the night."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from bilten_core.tenancy.context import TenantInfo
from bilten_core.testing import host_of
from tests.ticketing.event_factory import BUYER, buy, create_event, signed_in_member, staff_headers

MakeTenant = Callable[..., TenantInfo]


def _reserve(client: FlaskClient, tenant: TenantInfo, ticket_type_id: str) -> Any:
    return client.post("/api/v1/reservations", headers=host_of(tenant),
                       json={"items": [{"ticket_type_id": ticket_type_id, "quantity": 1}]})


def _place(client: FlaskClient, tenant: TenantInfo, reservation_id: str) -> Any:
    return client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reservation_id, "email": BUYER, "name": "Ann Buyer", "payment_provider": "door",
    })


def _buyer_view(client: FlaskClient, tenant: TenantInfo, code: str) -> dict[str, Any]:
    found = client.get(f"/api/v1/orders/{code}?email={BUYER}", headers=host_of(tenant))
    assert found.status_code == 200, found.text
    body: dict[str, Any] = found.get_json()
    return body


def test_a_door_order_keeps_its_tickets_until_the_event_ends_and_staff_settle_it(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant("door")
    event = create_event(app, tenant, quota=1, starts_in=timedelta(days=2))

    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="door")

    assert (order["status"], order["payment_provider"]) == ("awaiting_payment", "door")
    events = client.get(f"/api/v1/events/{event.id}", headers=staff_headers(app, tenant))
    ends_at = datetime.fromisoformat(events.get_json()["ends_at"])
    assert datetime.fromisoformat(order["payment_due_at"]) == ends_at
    # The one place is the order's until then: nobody else can have it.
    assert _reserve(client, tenant, event.ticket_type_ids[0]).status_code == 409

    box_office = signed_in_member(app, tenant, "box_office")
    settled = box_office.post(f"/manage/events/{event.id}/orders/{order['code']}/mark-paid", {"reference": "cash"})
    assert settled.status_code == 302
    paid = _buyer_view(client, tenant, order["code"])
    assert paid["status"] == "paid"


def test_paying_at_the_door_is_not_offered_for_free_orders(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant("door")
    event = create_event(app, tenant, ticket_types=(("Free entry", 0),))
    reserved = _reserve(client, tenant, event.ticket_type_ids[0])

    refused = _place(client, tenant, reserved.get_json()["id"])

    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "payment_provider_refused"


def test_an_unpaid_door_order_expires_when_the_event_ends_and_its_place_goes_back_on_sale(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant("door")
    # An event that started an hour ago and ends in four seconds: a late arrival can still choose the door.
    event = create_event(app, tenant, quota=1, starts_in=timedelta(hours=-1, seconds=4), hours=1)
    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="door")
    assert _buyer_view(client, tenant, order["code"])["status"] == "awaiting_payment"

    time.sleep(max(0.0, (datetime.fromisoformat(order["payment_due_at"]) - datetime.now().astimezone())
                   .total_seconds()) + 0.5)

    assert _buyer_view(client, tenant, order["code"])["status"] == "expired"
    staff = staff_headers(app, tenant, "admin")
    late = client.post(f"/api/v1/orders/{order['code']}/mark-paid", headers=staff, json={"reference": "cash"})
    assert late.status_code == 409
    assert _reserve(client, tenant, event.ticket_type_ids[0]).status_code == 201


def test_another_tenant_cannot_settle_or_see_a_door_order(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    mine, theirs = make_tenant("door-a"), make_tenant("door-b")
    event = create_event(app, mine)
    order = buy(client, mine, (event.ticket_type_ids[0], 1), payment_provider="door")
    their_staff = staff_headers(app, theirs, "admin")

    on_their_host = client.post(f"/api/v1/orders/{order['code']}/mark-paid", headers=their_staff, json={})
    assert on_their_host.status_code == 404
    on_my_host = client.post(f"/api/v1/orders/{order['code']}/mark-paid",
                             headers={**their_staff, **host_of(mine)}, json={})
    assert on_my_host.status_code == 401
    assert _buyer_view(client, mine, order["code"])["status"] == "awaiting_payment"


def test_paying_at_the_door_is_refused_once_the_event_is_over(
    app: Flask, client: FlaskClient, make_tenant: MakeTenant
) -> None:
    tenant = make_tenant("door")
    event = create_event(app, tenant, starts_in=timedelta(hours=-3, seconds=3), hours=3)
    reserved = _reserve(client, tenant, event.ticket_type_ids[0])
    assert reserved.status_code == 201, reserved.text  # tickets are still sold while it runs
    time.sleep(3.5)  # the event ends while the buyer fills in the form

    refused = _place(client, tenant, reserved.get_json()["id"])

    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "payment_provider_refused"
    assert "once the event is over" in refused.get_json()["error"]["message"]
    # Another way of paying still works for the same reservation.
    invoiced = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": BUYER, "name": "Ann Buyer",
    })
    assert invoiced.status_code == 201, invoiced.text
