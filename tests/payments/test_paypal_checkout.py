"""PayPal (Orders v2) end to end: the app's PayPal client against the local PayPal fake over real HTTP,
with the fake's webhooks posted to each tenant's own host and verified by posting them back. A paid
order is issued once however often PayPal says so; a buyer who never comes back is captured by the
webhook or by reconciliation; a payment too late is paid back; refunds go through PayPal; one tenant's
PayPal app, host and webhooks never reach another's orders."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from plugins.payments.models import PaymentAttempt, ProviderEvent
from plugins.payments.paypal_client import PayPalError, paypal_client
from plugins.payments.reconciliation import reconcile
from tests.payments.card_helpers import attempts_of, lapse, order_row
from tests.payments.paypal_fake import App, PayPalFake
from tests.payments.paypal_helpers import (
    TenantFront,
    approve,
    approve_on_paypal,
    configure_paypal,
    local_path,
    open_paypal,
    paypal_order,
    paypal_tenant,
    storm,
)
from tests.ticketing.event_factory import buy, create_event, staff_headers

PRICE = 2500


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[PayPalFake]:
    running = PayPalFake().start()
    configure_paypal(app, running, monkeypatch)
    yield running
    running.stop()


@pytest.fixture
def fronts(app: Flask, fake: PayPalFake) -> Iterator[list[TenantFront]]:
    made: list[TenantFront] = []
    yield made
    for front in made:
        front.stop()


@pytest.fixture
def shop(app: Flask, fake: PayPalFake, fronts: list[TenantFront]):
    """A tenant taking PayPal, its app at the fake sending webhooks to the tenant's own host."""
    return _shop(app, fake, fronts, "paypal")


def _shop(app: Flask, fake: PayPalFake, fronts: list[TenantFront], name: str) -> tuple[TenantInfo, App, TenantFront]:
    tenant, paypal_app = paypal_tenant(app, fake, name)
    front = TenantFront(app, tenant)
    fronts.append(front)
    fake.configure_webhook(front.webhook_url(), client_id=paypal_app.client_id)
    return tenant, paypal_app, front


def _event(app, tenant, quota=10):
    return create_event(app, tenant, ticket_types=(("Standard", PRICE),), quota=quota)


def _events_recorded(app, client_id, event_type=None):
    with app.app_context():
        query = sa.select(ProviderEvent.outcome).where(ProviderEvent.provider == "paypal",
                                                       ProviderEvent.account == client_id)
        if event_type is not None:
            query = query.where(ProviderEvent.type == event_type)
        return list(db.session.scalars(query))


def _announced(app, tenant, topic, order_id):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic,
            OutboxRow.payload["order_id"].astext == order_id))


def _requests(fake, path_part, method="POST"):
    return [r for r in fake.received if r["method"] == method and path_part in r["path"]]


def _actions(order):
    return [entry.action for entry in order.history]


def test_paying_with_paypal_issues_the_tickets_once_even_with_the_webhooks(app, client, fake, shop):
    tenant, paypal_app, _front = shop
    event = _event(app, tenant)
    order = paypal_order(client, tenant, event.ticket_type_ids[0], 2)
    assert order["payment_url"].endswith(f"/payments/orders/{order['id']}/paypal")

    approve_url = open_paypal(client, tenant, order)
    assert approve_url.startswith(fake.base + "/checkoutnow?token=")
    # A reload or a second tab reuses the same PayPal order.
    assert open_paypal(client, tenant, order) == approve_url
    back = client.get(local_path(approve(approve_url)), headers=host_of(tenant))
    assert back.status_code == 303 and back.headers["Location"].endswith("/done")

    # CHECKOUT.ORDER.APPROVED and PAYMENT.CAPTURE.COMPLETED also arrive (the first may race the buyer's return).
    deliveries = fake.wait_for_deliveries(2, timeout=30)
    assert [d.status for d in deliveries] == [200, 200]
    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid"
    assert all(ticket.valid for ticket in settled.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.provider, attempt.status, attempt.outcome) == ("paypal", "succeeded", "paid")
    assert attempt.amount_minor == 2 * PRICE and attempt.account == paypal_app.client_id
    paypal = fake.orders[attempt.provider_reference]
    assert (paypal.currency, paypal.amount, paypal.client_id) == ("EUR", Decimal("50.00"), paypal_app.client_id)
    assert paypal.unit["custom_id"] == attempt.id and paypal.unit["invoice_id"] == f"{order['code']}-1"
    assert attempt.payment_reference == paypal.capture_id
    [created] = _requests(fake, "/v2/checkout/orders", "POST")[:1]
    assert created["request_id"] == f"bilten-order-{order['id']}-attempt-1-create"
    assert created["body"]["purchase_units"][0]["amount"] == {"currency_code": "EUR", "value": "50.00"}
    captures = _requests(fake, "/capture")
    assert {c["request_id"] for c in captures} == {f"bilten-attempt-{attempt.id}-capture"}
    assert len(fake.captures) == 1
    assert _actions(settled).count("paid") == 1
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1
    assert sorted(_events_recorded(app, paypal_app.client_id)) in (["duplicate", "duplicate"],
                                                                     ["duplicate", "paid"])
    page = client.get(back.headers["Location"], headers=host_of(tenant))
    assert "your order is confirmed" in page.text


def _wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _paid(app, client, fake, tenant, type_id, quantity=1):
    """An order paid with PayPal, the buyer back at the shop and both webhooks handled."""
    order = paypal_order(client, tenant, type_id, quantity)
    already = len(fake.deliveries)
    approve_on_paypal(client, tenant, order)
    fake.wait_for_deliveries(already + 2, timeout=30)
    assert order_row(app, tenant, order["id"]).status == "paid"
    return order


def _approved_but_held(client, fake, tenant, front, type_id):
    """An order the buyer approved at PayPal without coming back; the approval's webhook kept, not passed on."""
    order = paypal_order(client, tenant, type_id)
    front.hold = True
    already = len(fake.deliveries)
    approve(open_paypal(client, tenant, order))
    fake.wait_for_deliveries(already + 1, timeout=30)
    front.hold = False
    return order, front.event("CHECKOUT.ORDER.APPROVED")


def test_a_buyer_who_never_comes_back_is_captured_by_the_approval_webhook(app, client, fake, shop):
    tenant, paypal_app, front = shop
    event = _event(app, tenant)
    order, approved = _approved_but_held(client, fake, tenant, front, event.ticket_type_ids[0])
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"
    # PayPal cannot be asked to verify the event: nothing is kept, and PayPal is told to come back.
    fake.fail_next(1, status=500, path="verify-webhook-signature")
    down = front.deliver(approved)
    assert down.status_code == 503 and down.headers["Retry-After"]
    assert down.json()["error"]["code"] == "provider_unavailable"
    assert _events_recorded(app, paypal_app.client_id) == []

    already = len(fake.deliveries)
    again = front.deliver(approved)

    assert again.status_code == 200 and again.json()["outcome"] == "paid", again.text
    issued = order_row(app, tenant, order["id"])
    assert issued.status == "paid" and all(ticket.valid for ticket in issued.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert [c["request_id"] for c in _requests(fake, "/capture")] == [f"bilten-attempt-{attempt.id}-capture"]
    # The capture's own webhook then finds the order paid; the buyer's late return too.
    [completed] = fake.wait_for_deliveries(already + 1, timeout=30)[already:]
    assert completed.status == 200
    assert _events_recorded(app, paypal_app.client_id, "PAYMENT.CAPTURE.COMPLETED") == ["duplicate"]
    back = client.get(f"/payments/orders/{order['id']}/paypal/return?token={attempt.provider_reference}",
                      headers=host_of(tenant))
    assert back.status_code == 303
    assert len(_requests(fake, "/capture")) == 1
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1


def test_a_forged_or_unverifiable_webhook_is_refused_without_a_trace(app, client, fake, shop, fronts):
    tenant, paypal_app, front = shop
    _other, other_app, other_front = _shop(app, fake, fronts, "paypalB")
    event = _event(app, tenant)
    order, approved = _approved_but_held(client, fake, tenant, front, event.ticket_type_ids[0])
    body = json.loads(approved.body)
    tampered = json.dumps({**body, "resource": {**body["resource"], "id": "5O190127TN364715T"}}).encode()

    refused = {
        "tampered body": front.deliver(approved, body=tampered),
        "forged signature": front.deliver(approved, headers={"PAYPAL-TRANSMISSION-SIG": "Zm9yZ2VkIHNpZ25hdHVyZQ=="}),
        "another transmission id": front.deliver(approved, headers={"PAYPAL-TRANSMISSION-ID": "a-made-up-id"}),
        "no PayPal headers": requests.post(front.webhook_url(), data=approved.body,
                                           headers={"Content-Type": "application/json"}, timeout=30),
        # Genuine, but for tenant A's app: tenant B verifies with its own credentials and webhook id.
        "another tenant's host": other_front.deliver(approved),
    }
    not_an_event = front.deliver(approved, body=b'{"id": 42}')
    not_json = front.deliver(approved, body=b"\xff not json")

    for name, answer in refused.items():
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_signature"), name
    for answer in (not_an_event, not_json):
        assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_payload")
    assert _events_recorded(app, paypal_app.client_id) == []
    assert _events_recorded(app, other_app.client_id) == []
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"
    assert fake.captures == {}
    # The genuine delivery still counts.
    assert front.deliver(approved).json()["outcome"] == "paid"


def test_the_same_webhook_twenty_times_at_once_has_one_effect(app, client, fake, shop):
    tenant, paypal_app, front = shop
    event = _event(app, tenant)
    order, approved = _approved_but_held(client, fake, tenant, front, event.ticket_type_ids[0])
    # The first delivery's capture is slow: the other nineteen arrive meanwhile.
    fake.fail_next(1, status=None, delay=1.0, path="/capture")

    answers = storm(front, approved)

    assert [answer.status_code for answer in answers] == [200] * 20
    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 19
    assert _events_recorded(app, paypal_app.client_id, "CHECKOUT.ORDER.APPROVED") == ["paid"]
    assert len(_requests(fake, "/capture")) == 1 and len(fake.captures) == 1
    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid" and _actions(settled).count("paid") == 1
    assert _announced(app, tenant, "ticketing.order_paid", order["id"]) == 1


def test_a_payment_after_the_deadline_is_paid_back_when_its_places_were_sold(app, client, fake, shop):
    tenant, paypal_app, _front = shop
    event = _event(app, tenant, quota=1)
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    approve_url = open_paypal(client, tenant, order)
    lapse(app, tenant, order["id"])
    rival = buy(client, tenant, (event.ticket_type_ids[0], 1), email="bob@example.org")
    assert rival["status"] == "awaiting_payment"

    back = client.get(local_path(approve(approve_url)), headers=host_of(tenant))

    assert back.status_code == 303
    late = order_row(app, tenant, order["id"])
    assert late.status == "expired" and not any(ticket.valid for ticket in late.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.status, attempt.outcome) == ("refunded", "refunded_late")
    [refund] = fake.refunds.values()
    assert (refund.capture_id, refund.amount) == (attempt.payment_reference, Decimal("25.00"))
    assert [r["request_id"] for r in _requests(fake, "/refund")] == [f"bilten-attempt-{attempt.id}-refund"]
    assert "refunded_late" in _actions(late)
    assert _announced(app, tenant, "payments.late_payment_refunded", order["id"]) == 1
    assert order_row(app, tenant, rival["id"]).status == "awaiting_payment"
    # Its refund's webhook is recognised as Bilten's own pay-back, not a refund of the order.
    fake.wait_for_deliveries(3, timeout=30)
    assert _events_recorded(app, paypal_app.client_id, "PAYMENT.CAPTURE.REFUNDED") == ["own_refund"]


def test_refunding_a_ticket_pays_it_back_through_paypal(app, client, fake, shop):
    tenant, paypal_app, _front = shop
    event = _event(app, tenant)
    order = _paid(app, client, fake, tenant, event.ticket_type_ids[0], 2)
    ticket = order_row(app, tenant, order["id"]).tickets[0]
    fake.expire_tokens()  # the kept token was revoked: the client gets a new one once
    already = len(fake.deliveries)

    refunded = client.post(f"/api/v1/orders/{order['code']}/refunds", headers=staff_headers(app, tenant, "admin"),
                           json={"ticket_ids": [ticket.id], "reason": "Cannot come"})

    assert refunded.status_code == 201, refunded.text
    body = refunded.get_json()
    paypal_refund = fake.refunds[body["reference"]]
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (paypal_refund.capture_id, paypal_refund.amount) == (attempt.payment_reference, Decimal("25.00"))
    # Asked again after the revoked token was renewed: the same request id, so one refund.
    assert {r["request_id"] for r in _requests(fake, "/refund")} == {f"bilten-refund-{body['id']}"}
    assert len(fake.refunds) == 1 and len(_requests(fake, "/v1/oauth2/token")) == 2
    after = order_row(app, tenant, order["id"])
    assert after.status == "partially_refunded"
    assert [t.valid for t in after.tickets] == [False, True]
    # PayPal's PAYMENT.CAPTURE.REFUNDED settles the refund that was pending.
    fake.wait_for_deliveries(already + 1, timeout=30)
    assert "refund_succeeded" in _actions(order_row(app, tenant, order["id"]))
    assert _events_recorded(app, paypal_app.client_id, "PAYMENT.CAPTURE.REFUNDED") == ["refund_succeeded"]


def test_a_staff_refund_above_what_is_left_at_paypal_is_refused(app, client, fake, shop):
    tenant, _paypal_app, front = shop
    event = _event(app, tenant)
    order = _paid(app, client, fake, tenant, event.ticket_type_ids[0], 2)
    [attempt] = attempts_of(app, tenant, order["id"])
    admin = staff_headers(app, tenant, "admin")
    # 30.00 of the 50.00 was refunded in PayPal's own dashboard; its webhook has not arrived yet.
    front.hold = True
    already = len(fake.deliveries)
    with app.app_context(), tenant_context(tenant):
        paypal_client().refund_capture(attempt.payment_reference,
                                       {"amount": {"currency_code": "EUR", "value": "30.00"}}, "dashboard-refund-1")
    fake.wait_for_deliveries(already + 1, timeout=30)
    front.hold = False
    ticket = order_row(app, tenant, order["id"]).tickets[0]

    above_paypal = client.post(f"/api/v1/orders/{order['code']}/refunds", headers=admin,
                               json={"ticket_ids": [ticket.id]})
    above_order = client.post(f"/api/v1/orders/{order['code']}/refunds", headers=admin,
                              json={"amount_minor": 2 * PRICE + 1})

    assert above_paypal.status_code == 409 and above_paypal.get_json()["error"]["code"] == "refund_amount_exceeded"
    assert above_order.status_code == 422 and above_order.get_json()["error"]["code"] == "amount_above_refundable"
    unchanged = order_row(app, tenant, order["id"])
    assert unchanged.status == "paid" and all(t.valid for t in unchanged.tickets)
    assert len(fake.refunds) == 1
    # The dashboard refund's webhook, delivered now, records it on the order.
    recorded = front.deliver(front.event("PAYMENT.CAPTURE.REFUNDED"))
    assert recorded.json()["outcome"] == "recorded", recorded.text
    after = order_row(app, tenant, order["id"])
    assert after.status == "partially_refunded"
    assert client.get(f"/api/v1/orders/{order['code']}/refunds", headers=admin).get_json()[0]["amount_minor"] == 3000


def test_paypal_down_when_the_buyer_goes_to_pay_is_a_503_and_the_retry_reuses_the_request_id(app, client, fake, shop):
    tenant, _paypal_app, _front = shop
    event = _event(app, tenant)
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    fake.fail_next(1, status=500, path="/v2/checkout/orders")

    down = client.get(local_path(order["payment_url"]), headers={**host_of(tenant), "Accept": "text/html"})

    assert down.status_code == 503 and down.headers["Retry-After"]
    assert "try again" in down.text
    assert attempts_of(app, tenant, order["id"]) == []
    # A lost answer: PayPal makes the order, the shop gives up waiting.
    fake.fail_next(1, status=None, delay=5.5, path="/v2/checkout/orders")
    lost = client.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert lost.status_code == 503
    _wait_until(lambda: bool(fake.orders))
    approve_url = open_paypal(client, tenant, order)
    [made] = fake.orders.values()
    assert approve_url.endswith(f"token={made.id}")
    creates = [r["request_id"] for r in _requests(fake, "/v2/checkout/orders") if r["path"] == "/v2/checkout/orders"]
    assert creates == [f"bilten-order-{order['id']}-attempt-1-create"] * 3
    [attempt] = attempts_of(app, tenant, order["id"])
    assert made.unit["custom_id"] == attempt.id


def test_another_tenant_cannot_see_open_or_settle_an_order(app, client, fake, shop, fronts):
    tenant, _paypal_app, _front = shop
    other, _other_app, _other_front = _shop(app, fake, fronts, "paypalB")
    event = _event(app, tenant)
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    approve_url = open_paypal(client, tenant, order)
    [attempt] = attempts_of(app, tenant, order["id"])

    assert client.get(local_path(order["payment_url"]), headers=host_of(other)).status_code == 404
    returned = client.get(f"/payments/orders/{order['id']}/paypal/return?token={attempt.provider_reference}",
                          headers=host_of(other))
    assert returned.status_code == 404
    with app.app_context(), tenant_context(other):
        with pytest.raises(PayPalError) as unseen:
            paypal_client().get_order(attempt.provider_reference)
        assert unseen.value.status == 404
        assert reconcile().checked == 0
    assert fake.captures == {}
    # A's own return still works.
    client.get(local_path(approve(approve_url)), headers=host_of(tenant))
    assert order_row(app, tenant, order["id"]).status == "paid"


def test_reconciliation_captures_an_approved_order_nobody_heard_of(app, client, fake, shop):
    tenant, _paypal_app, front = shop
    event = _event(app, tenant)
    front.hold = True  # no webhook ever arrives, and the buyer never comes back
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    approve(open_paypal(client, tenant, order))
    fake.fail_next(1, status=503, path="/v2/checkout/orders/")

    with app.app_context(), tenant_context(tenant):
        down = reconcile()
        first = reconcile()
        second = reconcile()

    assert (down.checked, down.unreachable, down.issued) == (1, 1, 0)
    assert (first.checked, first.issued) == (1, 1)
    assert (second.checked, second.issued) == (0, 0)
    repaired = order_row(app, tenant, order["id"])
    assert repaired.status == "paid" and all(ticket.valid for ticket in repaired.tickets)
    assert len(fake.captures) == 1


def _offered(client, tenant, type_id):
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": 1}]})
    ordered = client.post("/api/v1/orders", headers=host_of(tenant), json={
        "reservation_id": reserved.get_json()["id"], "email": "ann@example.org", "name": "Ann", "attendees": [],
        "payment_provider": "paypal"})
    if ordered.status_code == 201:
        return True
    assert ordered.get_json()["error"]["code"] == "payment_provider_refused"
    assert "paypal" not in ordered.get_json()["error"]["details"]["available"]
    return False


def test_paypal_is_offered_only_when_enabled_with_credentials(app, client, fake):
    tenant, paypal_app = paypal_tenant(app, fake, "nopaypal", providers=("invoice",))
    type_id = _event(app, tenant).ticket_type_ids[0]

    def change(**values):
        with app.app_context(), tenant_context(tenant):
            update_settings("payments", values)
            db.session.commit()

    not_enabled = _offered(client, tenant, type_id)
    change(enabled_providers=["paypal", "invoice"], paypal_client_id=None)
    no_client_id = _offered(client, tenant, type_id)
    change(paypal_client_id=paypal_app.client_id)
    ready = _offered(client, tenant, type_id)

    assert (not_enabled, no_client_id, ready) == (False, False, True)


def test_a_pending_capture_waits_for_paypal_and_a_denied_one_lets_the_buyer_pay_again(app, client, fake, shop):
    tenant, paypal_app, _front = shop
    event = _event(app, tenant)
    first_order = paypal_order(client, tenant, event.ticket_type_ids[0])
    second_order = paypal_order(client, tenant, event.ticket_type_ids[0], email="bob@example.org")
    already = len(fake.deliveries)
    fake.next_capture = "PENDING"
    approve_on_paypal(client, tenant, first_order)
    fake.next_capture = "PENDING"
    approve_on_paypal(client, tenant, second_order)
    fake.wait_for_deliveries(already + 4, timeout=30)  # approved and capture pending, twice
    assert order_row(app, tenant, first_order["id"]).status == "awaiting_payment"
    [pending] = attempts_of(app, tenant, first_order["id"])
    [refused] = attempts_of(app, tenant, second_order["id"])
    assert (pending.status, refused.status) == ("open", "open")

    fake.settle_capture(fake.orders[pending.provider_reference].capture_id, completed=True)
    fake.settle_capture(fake.orders[refused.provider_reference].capture_id, completed=False)
    fake.wait_for_deliveries(already + 6, timeout=30)

    assert order_row(app, tenant, first_order["id"]).status == "paid"
    denied = order_row(app, tenant, second_order["id"])
    assert denied.status == "awaiting_payment" and "payment_failed" in _actions(denied)
    assert [a.status for a in attempts_of(app, tenant, second_order["id"])] == ["failed"]
    assert sorted(_events_recorded(app, paypal_app.client_id, "PAYMENT.CAPTURE.DENIED")) == ["noted"]
    # The buyer tries again: a new PayPal order, which pays.
    approve_on_paypal(client, tenant, second_order)
    assert order_row(app, tenant, second_order["id"]).status == "paid"
    assert [a.status for a in attempts_of(app, tenant, second_order["id"])] == ["failed", "succeeded"]


def test_a_payment_of_another_amount_is_paid_back(app, client, fake, shop):
    tenant, _paypal_app, _front = shop
    event = _event(app, tenant)
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    approve_url = open_paypal(client, tenant, order)
    # What Bilten expects no longer matches what PayPal was asked for (as if the order were changed meanwhile).
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(PaymentAttempt).where(PaymentAttempt.order_id == order["id"])
                           .values(amount_minor=PRICE + 100))
        db.session.commit()

    client.get(local_path(approve(approve_url)), headers=host_of(tenant))

    unpaid = order_row(app, tenant, order["id"])
    assert unpaid.status == "awaiting_payment" and "payment_mismatch" in _actions(unpaid)
    assert [(a.status, a.outcome) for a in attempts_of(app, tenant, order["id"])] == [
        ("refunded", "refunded_amount_mismatch")]
    [refund] = fake.refunds.values()
    assert refund.amount == Decimal("25.00")


def test_a_funding_source_declined_at_capture_can_be_approved_again_on_the_same_link(app, client, fake, shop):
    tenant, _paypal_app, _front = shop
    event = _event(app, tenant)
    order = paypal_order(client, tenant, event.ticket_type_ids[0])
    fake.next_capture = "DECLINED"

    approve_on_paypal(client, tenant, order)

    declined = order_row(app, tenant, order["id"])
    assert declined.status == "awaiting_payment" and "payment_failed" in _actions(declined)
    assert [a.status for a in attempts_of(app, tenant, order["id"])] == ["open"]
    approve_on_paypal(client, tenant, order)
    assert order_row(app, tenant, order["id"]).status == "paid"
    assert len(fake.orders) == 1 and len(fake.captures) == 1
