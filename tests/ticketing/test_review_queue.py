"""The review queue: an order a risk check holds keeps its places without any payment starting, until
staff approve it (its payment starts), reject it (cancelled, places back on sale) or its review
deadline passes (expired). Approving and rejecting race safely, and stay within one tenant."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import job_probe
import pytest

from bilten_core.testing import assert_api_error, host_of
from tests.auth.auth_mail import deliver
from tests.ticketing.event_factory import create_event
from tests.ticketing.review_queue_helpers import hold_big_orders, pass_deadline, place


@pytest.fixture
def shop(tk_app, make_tenant):
    tenant = make_tenant("review")
    hold_big_orders(tk_app, tenant)
    return create_event(tk_app, tenant, ticket_types=(("Standard", 2500),), quota=4)


def _buyer() -> str:
    return f"buyer-{uuid.uuid4().hex[:8]}@example.org"


def _available(client, shop) -> int:
    response = client.get(f"/api/v1/events/{shop.id}/availability", headers=host_of(shop.tenant))
    return response.get_json()["ticket_types"][shop.ticket_type_ids[0]]


def _held(client, shop, quantity=3, email=None):
    response = place(client, shop.tenant, shop.ticket_type_ids[0], quantity, email or _buyer())
    assert response.status_code == 201, response.text
    order = response.get_json()
    assert order["status"] == "held_for_review"
    return order


def _history(client, shop, admin, code):
    response = client.get(f"/api/v1/orders/{code}/history", headers=admin)
    assert response.status_code == 200, response.text
    return response.get_json()


def test_a_held_order_keeps_its_places_and_starts_no_payment(client, tk_app, shop, staff_headers):
    order = _held(client, shop)
    assert order["payment_url"] is None and order["paid_at"] is None
    due = datetime.fromisoformat(order["payment_due_at"])
    assert timedelta(hours=23) < due - datetime.now(UTC) <= timedelta(hours=24, minutes=1)
    # Its three places stay taken: one is left, and a buyer wanting two is turned away.
    assert _available(client, shop) == 1
    too_many = client.post("/api/v1/reservations", headers=host_of(shop.tenant),
                           json={"items": [{"ticket_type_id": shop.ticket_type_ids[0], "quantity": 2}]})
    assert too_many.status_code == 409
    # A small order of another buyer is not held.
    small = place(client, shop.tenant, shop.ticket_type_ids[0], 1, _buyer()).get_json()
    assert small["status"] == "awaiting_payment"

    admin = staff_headers(shop.tenant, "admin")
    detail = _history(client, shop, admin, order["code"])
    held = [entry for entry in detail["history"] if entry["action"] == "held_for_review"]
    assert held and held[0]["details"] == {"reasons": ["fraud:tickets_per_email"]}
    listed = client.get(f"/api/v1/orders?status=held_for_review&event_id={shop.id}", headers=admin).get_json()
    assert [item["code"] for item in listed] == [order["code"]]


def test_the_review_deadline_is_never_after_the_event_starts(client, tk_app, make_tenant):
    tenant = make_tenant("review-soon")
    hold_big_orders(tk_app, tenant)
    soon = create_event(tk_app, tenant, ticket_types=(("Standard", 2500),), quota=4, starts_in=timedelta(hours=3))
    order = place(client, tenant, soon.ticket_type_ids[0], 3, _buyer()).get_json()
    assert order["status"] == "held_for_review"
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    assert abs(datetime.fromisoformat(order["payment_due_at"]) - starts) < timedelta(minutes=1)


def test_approving_starts_the_payment_and_mails_how_to_pay(client, tk_app, shop, staff_headers, inbox):
    email = _buyer()
    order = _held(client, shop, email=email)
    job_probe.work(tk_app, ["default"])
    deliver(tk_app)
    [checking] = inbox.messages(to=email)
    assert "checking your order" in checking["Subject"] and order["code"] in checking["Subject"]
    assert "Nothing has been charged" in checking.get_body(preferencelist=("plain",)).get_content()

    admin = staff_headers(shop.tenant, "box_office")
    approved = client.post(f"/api/v1/orders/{order['code']}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    body = approved.get_json()
    assert body["status"] == "awaiting_payment"
    # The invoice's own deadline now applies (14 days), and the places are still the order's.
    assert datetime.fromisoformat(body["payment_due_at"]) - datetime.now(UTC) > timedelta(days=13)
    assert _available(client, shop) == 1
    actions = [entry["action"] for entry in body["history"]]
    assert actions.index("held_for_review") < actions.index("review_approved") < actions.index("awaiting_payment")

    job_probe.work(tk_app, ["default"])
    deliver(tk_app)
    payment = [m for m in inbox.messages(to=email) if m["Subject"].startswith("Payment for your order")]
    assert len(payment) == 1

    # Approved once: a second approval or a rejection is refused.
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/approve", headers=admin), 409,
                     "illegal_transition")
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/reject", json={}, headers=admin), 409,
                     "illegal_transition")


def test_rejecting_cancels_the_order_and_frees_its_places(client, shop, staff_headers):
    order = _held(client, shop)
    admin = staff_headers(shop.tenant, "admin")
    too_long = client.post(f"/api/v1/orders/{order['code']}/reject", json={"reason": "x" * 501}, headers=admin)
    assert_api_error(too_long, 422, "unprocessable_entity")
    rejected = client.post(f"/api/v1/orders/{order['code']}/reject", json={"reason": "Stolen card"}, headers=admin)
    assert rejected.status_code == 200, rejected.text
    body = rejected.get_json()
    assert body["status"] == "cancelled"
    assert not any(ticket["valid"] for ticket in body["tickets"])
    step = next(entry for entry in body["history"] if entry["action"] == "review_rejected")
    assert step["details"] == {"reason": "Stolen card"} and step["to_status"] == "cancelled"
    assert _available(client, shop) == 4


def test_a_held_order_expires_at_its_deadline_and_cannot_be_approved_then(client, tk_app, shop, staff_headers):
    order = _held(client, shop)
    pass_deadline(tk_app, shop.tenant, order["code"])
    admin = staff_headers(shop.tenant, "admin")
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/approve", headers=admin), 409, "illegal_transition")
    assert _history(client, shop, admin, order["code"])["status"] == "expired"
    assert _available(client, shop) == 4


def test_approving_after_the_places_were_sold_is_refused(client, tk_app, shop, staff_headers):
    order = _held(client, shop)
    # The hold on its places ran out (the deadline itself is still ahead) and another buyer took them.
    pass_deadline(tk_app, shop.tenant, order["code"])
    from bilten_core.db import db
    from bilten_core.tenancy.context import tenant_context
    from plugins.ticketing.orders import Order

    with tk_app.app_context(), tenant_context(shop.tenant):
        db.session.query(Order).filter(Order.code == order["code"]).update(
            {"payment_due_at": datetime.now(UTC) + timedelta(hours=1)})
        db.session.commit()
    assert place(client, shop.tenant, shop.ticket_type_ids[0], 2, _buyer()).status_code == 201
    admin = staff_headers(shop.tenant, "admin")
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/approve", headers=admin), 410, "places_lost")
    assert _history(client, shop, admin, order["code"])["status"] == "held_for_review"


def test_approve_racing_reject_one_wins(tk_app, shop, staff_headers):
    client = tk_app.test_client()
    order = _held(client, shop)
    admin = staff_headers(shop.tenant, "admin")
    start = threading.Barrier(2)
    answers: dict[str, int] = {}

    def decide(decision: str) -> None:
        start.wait()
        response = tk_app.test_client().post(f"/api/v1/orders/{order['code']}/{decision}", json={}, headers=admin)
        answers[decision] = response.status_code

    threads = [threading.Thread(target=decide, args=(decision,)) for decision in ("approve", "reject")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers.values()) == [200, 409], answers
    status = _history(client, shop, admin, order["code"])["status"]
    assert status == ("awaiting_payment" if answers["approve"] == 200 else "cancelled")


def test_only_staff_who_manage_orders_of_this_tenant_decide(client, tk_app, shop, make_tenant, staff_headers):
    order = _held(client, shop)
    other = make_tenant("review-other")
    outsider = staff_headers(other, "admin")
    # Tenant B's staff on B's host do not find A's order; B's token on A's host is not A's staff.
    assert_api_error(client.post(f"/api/v1/orders/{order['code']}/approve", headers=outsider), 404, "order_not_found")
    foreign = {**outsider, **host_of(shop.tenant)}
    assert client.post(f"/api/v1/orders/{order['code']}/approve", headers=foreign).status_code in (401, 403)
    finance = staff_headers(shop.tenant, "finance")
    assert client.post(f"/api/v1/orders/{order['code']}/reject", json={}, headers=finance).status_code == 403
    assert client.post(f"/api/v1/orders/{order['code']}/approve", headers=host_of(shop.tenant)).status_code == 401
    assert _history(client, shop, staff_headers(shop.tenant, "admin"), order["code"])["status"] == "held_for_review"


def test_the_buyer_sees_that_the_order_is_being_checked(client, tk_app, shop):
    reserved = client.post("/api/v1/reservations", headers=host_of(shop.tenant),
                           json={"items": [{"ticket_type_id": shop.ticket_type_ids[0], "quantity": 3}]})
    reservation_id = reserved.get_json()["id"]
    placed = client.post("/api/v1/orders", headers=host_of(shop.tenant),
                         json={"reservation_id": reservation_id, "email": _buyer(), "name": "Ann Buyer"})
    assert placed.get_json()["status"] == "held_for_review"
    page = client.get(f"/checkout/{reservation_id}/done", headers=host_of(shop.tenant))
    assert page.status_code == 200
    assert "your order is being checked" in page.text and "Nothing has been charged" in page.text
    assert "Pay now" not in page.text
