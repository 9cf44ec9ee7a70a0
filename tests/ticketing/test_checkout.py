"""Reservations and checkout over the API: the happy path and every way a buyer can get it wrong."""

from __future__ import annotations

import uuid

from bilten_core.testing import assert_api_error, host_of


def _reserve(client, tenant, *items, **extra):
    body = {"items": [dict(zip(("ticket_type_id", "quantity"), item, strict=False)) for item in items], **extra}
    return client.post("/api/v1/reservations", json=body, headers=host_of(tenant))


def _order(client, tenant, reservation_id, key=None, **extra):
    headers = host_of(tenant) | ({"Idempotency-Key": key} if key else {})
    body = {"reservation_id": reservation_id, "email": "ann@example.org", "name": "Ann", **extra}
    return client.post("/api/v1/orders", json=body, headers=headers)


def _available(client, tenant, event_id):
    response = client.get(f"/api/v1/events/{event_id}/availability", headers=host_of(tenant))
    assert response.status_code == 200, response.text
    return response.get_json()["ticket_types"]


def test_reserve_order_and_find_the_paid_free_order(client, tenant, catalog):
    event_id, _quota, type_id = catalog.simple(size=5, kind="free", price_minor=0)
    reserved = _reserve(client, tenant, (type_id, 2))
    assert reserved.status_code == 201, reserved.text
    body = reserved.get_json()
    assert body["total_minor"] == 0 and body["lines"][0]["quantity"] == 2
    assert _available(client, tenant, event_id) == {type_id: 3}

    ordered = _order(client, tenant, body["id"], attendees=[{"name": "Ann"}, {"name": "Bob"}])
    assert ordered.status_code == 201, ordered.text
    order = ordered.get_json()
    assert order["status"] == "paid"
    assert [t["attendee_name"] for t in order["tickets"]] == ["Ann", "Bob"]
    assert len({t["code"] for t in order["tickets"]}) == 2
    assert all(len(t["code"]) >= 32 for t in order["tickets"])
    assert _available(client, tenant, event_id) == {type_id: 3}

    found = client.get(f"/api/v1/orders/{order['code']}?email=ANN@example.org", headers=host_of(tenant))
    assert found.status_code == 200 and found.get_json()["id"] == order["id"]
    wrong = client.get(f"/api/v1/orders/{order['code']}?email=eve@example.org", headers=host_of(tenant))
    missing = client.get("/api/v1/orders/ZZZZZZZZ?email=ann@example.org", headers=host_of(tenant))
    assert assert_api_error(wrong, 404, "order_not_found") == assert_api_error(missing, 404, "order_not_found")


def _unchanged(client, tenant, event_id, type_id, expected):
    assert _available(client, tenant, event_id)[type_id] == expected


def test_bad_quantities_are_refused_and_change_nothing(client, tenant, catalog):
    event_id, _quota, type_id = catalog.simple(size=20, max_per_order=4, min_per_order=2)
    for quantity in (0, -1, 1001):
        assert_api_error(_reserve(client, tenant, (type_id, quantity)), 422, "unprocessable_entity")
    assert_api_error(_reserve(client, tenant, (type_id, "2")), 422, "unprocessable_entity")
    error = assert_api_error(_reserve(client, tenant, (type_id, 5)), 422, "quantity_out_of_range")
    assert (error["details"]["min"], error["details"]["max"]) == (2, 4)
    assert_api_error(_reserve(client, tenant, (type_id, 1)), 422, "quantity_out_of_range")
    # The same type twice counts together.
    assert_api_error(_reserve(client, tenant, (type_id, 3), (type_id, 2)), 422, "quantity_out_of_range")
    assert_api_error(client.post("/api/v1/reservations", json={"items": []}, headers=host_of(tenant)),
                     422, "unprocessable_entity")
    _unchanged(client, tenant, event_id, type_id, 20)


def test_ticket_types_of_another_event_or_tenant_or_hidden_or_off_sale_are_refused(
    client, tenant, catalog, catalog_for, make_tenant
):
    from datetime import UTC, datetime, timedelta

    event_id, _quota, type_id = catalog.simple(size=5)
    _other_event, _q, other_type = catalog.simple(size=5)
    assert_api_error(_reserve(client, tenant, (type_id, 1), (other_type, 1)), 422, "several_events")

    foreign = catalog_for(make_tenant("tk-other"))
    _f_event, _f_quota, foreign_type = foreign.simple(size=5)
    assert_api_error(_reserve(client, tenant, (foreign_type, 1)), 422, "unknown_ticket_type")
    assert_api_error(_reserve(client, tenant, (str(uuid.uuid4()), 1)), 422, "unknown_ticket_type")
    assert_api_error(_reserve(client, tenant, ("not-a-uuid", 1)), 422, "unknown_ticket_type")

    quota = catalog.quota(event_id, 5, name="Secret")
    hidden = catalog.ticket_type(event_id, name="Crew", hidden=True, quotas=(quota,))
    assert_api_error(_reserve(client, tenant, (hidden, 1)), 422, "unknown_ticket_type")
    assert hidden not in _available(client, tenant, event_id)

    later = catalog.ticket_type(event_id, name="Late", quotas=(quota,),
                                sales_start=datetime.now(UTC) + timedelta(days=1))
    error = assert_api_error(_reserve(client, tenant, (later, 1)), 422, "not_on_sale")
    assert error["details"]["sales_start"]
    assert _available(client, tenant, event_id)[later] == 0
    ended = catalog.ticket_type(event_id, name="Early", quotas=(quota,),
                                sales_end=datetime.now(UTC) - timedelta(minutes=1))
    assert_api_error(_reserve(client, tenant, (ended, 1)), 422, "not_on_sale")

    draft = catalog.event(status="draft")
    draft_quota = catalog.quota(draft, 5)
    draft_type = catalog.ticket_type(draft, quotas=(draft_quota,))
    assert_api_error(_reserve(client, tenant, (draft_type, 1)), 422, "event_not_on_sale")
    _unchanged(client, tenant, event_id, type_id, 5)


def test_the_server_prices_and_ignores_prices_the_client_sends(client, tenant, catalog):
    _event, quota, paid = catalog.simple(size=10, price_minor=1999, tax_rate_bp=1900, tax_inclusive=False)
    body = {"items": [{"ticket_type_id": paid, "quantity": 2, "price_minor": 1}], "total_minor": 2}
    reserved = client.post("/api/v1/reservations", json=body, headers=host_of(tenant))
    assert reserved.status_code == 201, reserved.text
    line = reserved.get_json()["lines"][0]
    # 19 % on 19.99 is 3.7981, rounded to 3.80.
    assert (line["unit_price_minor"], line["unit_tax_minor"], line["total_minor"]) == (2379, 380, 4758)
    assert reserved.get_json()["total_minor"] == 4758

    pwyw = catalog.ticket_type(_event, name="Support us", kind="pay_what_you_want", price_minor=500,
                               quotas=(quota,))
    low = client.post("/api/v1/reservations", json={"items": [{"ticket_type_id": pwyw, "quantity": 1,
                                                               "price_minor": 499}]}, headers=host_of(tenant))
    assert assert_api_error(low, 422, "price_below_minimum")["details"]["minimum_minor"] == 500
    generous = client.post("/api/v1/reservations", json={"items": [{"ticket_type_id": pwyw, "quantity": 1,
                                                                    "price_minor": 2000}]}, headers=host_of(tenant))
    assert generous.get_json()["total_minor"] == 2000


def test_sold_out_is_a_409_that_says_what_is_left(client, tenant, catalog):
    event_id, quota, type_id = catalog.simple(size=3)
    hidden = catalog.ticket_type(event_id, name="Crew", hidden=True, quotas=(quota,))
    assert _reserve(client, tenant, (type_id, 2)).status_code == 201
    error = assert_api_error(_reserve(client, tenant, (type_id, 2)), 409, "sold_out")
    assert hidden not in error["details"]["available"]
    assert error["details"]["available"] == {type_id: 1}
    _unchanged(client, tenant, event_id, type_id, 1)


def test_a_type_on_two_quotas_takes_both_or_neither_and_the_event_capacity_caps_all(client, tenant, catalog):
    event_id = catalog.event(capacity=5)
    hall, vip_quota = catalog.quota(event_id, 4, name="Hall"), catalog.quota(event_id, 2, name="VIP")
    vip = catalog.ticket_type(event_id, name="VIP", quotas=(hall, vip_quota))
    standard = catalog.ticket_type(event_id, name="Standard", quotas=(hall,))
    other = catalog.ticket_type(event_id, name="Balcony", quotas=(catalog.quota(event_id, 10, name="Balcony"),))
    assert _available(client, tenant, event_id) == {vip: 2, standard: 4, other: 5}

    assert _reserve(client, tenant, (standard, 3)).status_code == 201
    # VIP needs 2 of the hall, which has 1 left: nothing is taken from the VIP quota either.
    refused = assert_api_error(_reserve(client, tenant, (vip, 2)), 409, "sold_out")
    assert refused["details"]["available"] == {vip: 1, standard: 1, other: 2}
    assert _available(client, tenant, event_id) == {vip: 1, standard: 1, other: 2}
    # The balcony has room but the event does not.
    assert_api_error(_reserve(client, tenant, (other, 3)), 409, "sold_out")
    assert _reserve(client, tenant, (other, 2)).status_code == 201
    assert _available(client, tenant, event_id) == {vip: 0, standard: 0, other: 0}


def test_expired_dropped_and_foreign_reservations(client, tenant, catalog, catalog_for, make_tenant):
    import time

    event_id, _quota, type_id = catalog.simple(size=4)
    dropped = _reserve(client, tenant, (type_id, 2)).get_json()["id"]
    assert client.delete(f"/api/v1/reservations/{dropped}", headers=host_of(tenant)).status_code == 204
    _unchanged(client, tenant, event_id, type_id, 4)
    assert_api_error(client.get(f"/api/v1/reservations/{dropped}", headers=host_of(tenant)), 404,
                     "reservation_not_found")
    assert_api_error(_order(client, tenant, dropped), 404, "reservation_not_found")
    for unknown in (str(uuid.uuid4()), "nope"):
        assert_api_error(client.get(f"/api/v1/reservations/{unknown}", headers=host_of(tenant)), 404,
                         "reservation_not_found")
        assert_api_error(_order(client, tenant, unknown), 404, "reservation_not_found")

    # Another tenant cannot see or use this tenant's reservation.
    mine = _reserve(client, tenant, (type_id, 1)).get_json()["id"]
    other = make_tenant("tk-other")
    catalog_for(other).simple(size=1)
    assert_api_error(client.get(f"/api/v1/reservations/{mine}", headers=host_of(other)), 404, "reservation_not_found")
    assert_api_error(_order(client, other, mine), 404, "reservation_not_found")
    assert client.get(f"/api/v1/reservations/{mine}", headers=host_of(tenant)).status_code == 200

    catalog.settings(reservation_seconds=1)
    short = _reserve(client, tenant, (type_id, 3)).get_json()["id"]
    assert _available(client, tenant, event_id) == {type_id: 0}
    time.sleep(1.2)
    assert_api_error(client.get(f"/api/v1/reservations/{short}", headers=host_of(tenant)), 410, "reservation_expired")
    assert_api_error(_order(client, tenant, short), 410, "reservation_expired")
    # Its places are free again without any cleanup having run.
    assert _available(client, tenant, event_id) == {type_id: 3}


def test_a_double_submitted_checkout_creates_one_order(client, tenant, catalog, tk_app):
    from concurrent.futures import ThreadPoolExecutor

    _event, _quota, type_id = catalog.simple(size=10)
    reservation = _reserve(client, tenant, (type_id, 2)).get_json()["id"]
    first = _order(client, tenant, reservation, key="key-1")
    again = _order(client, tenant, reservation, key="key-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["id"] == again.get_json()["id"]
    assert first.get_json()["status"] == "awaiting_payment"
    # The same key for another reservation is a mistake, not a new order.
    other = _reserve(client, tenant, (type_id, 1)).get_json()["id"]
    assert_api_error(_order(client, tenant, other, key="key-1"), 422, "idempotency_key_reused")
    assert_api_error(_order(client, tenant, reservation, key="key-2"), 409, "reservation_already_ordered")

    racing = _reserve(client, tenant, (type_id, 1)).get_json()["id"]
    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda _: _order(tk_app.test_client(), tenant, racing, key="race"), range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    assert len({r.get_json()["id"] for r in responses}) == 1


def test_attendees_and_buyer_limit(client, tenant, catalog):
    _event, _quota, type_id = catalog.simple(size=10, kind="free", price_minor=0)
    reservation = _reserve(client, tenant, (type_id, 1)).get_json()["id"]
    assert_api_error(_order(client, tenant, reservation, attendees=[{"name": "A"}, {"name": "B"}]), 422,
                     "too_many_attendees")
    assert_api_error(_order(client, tenant, reservation, email="not an email"), 422, "unprocessable_entity")
    catalog.settings(max_tickets_per_buyer=2)
    assert _order(client, tenant, reservation).status_code == 201
    second = _reserve(client, tenant, (type_id, 2)).get_json()["id"]
    assert_api_error(_order(client, tenant, second), 422, "buyer_limit_reached")
    assert _order(client, tenant, second, email="bob@example.org").status_code == 201
