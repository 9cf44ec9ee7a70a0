"""Card payments end to end: the real stripe library against a fake Stripe, its webhooks signed with real
HMAC and posted to the app over HTTP. A paid order is issued once however often Stripe says so; a payment
that arrives too late is issued if its places are still free and paid back if not; a process killed
between Stripe's word and our commit is repaired by reconciliation; refunds go through Stripe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import tenant_context
from bilten_core.testing import host_of
from plugins.payments.models import ProviderEvent
from plugins.payments.reconciliation import expire_lapsed_sessions, reconcile
from plugins.ticketing.orders import Order
from tests.payments.card_helpers import (
    CONNECT_PATH,
    attempts_of,
    card_order,
    card_tenant,
    configure_stripe,
    lapse,
    local_path,
    open_checkout,
    order_row,
    pay_on_stripe,
    post_event,
    served_for_webhooks,
    storm,
)
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import buy, create_event, staff_headers

PRICE = 2500


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        yield stripe_fake


@pytest.fixture
def webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    with served_for_webhooks(app, fake) as base:
        yield base


def _event(app, tenant, quota=10):
    return create_event(app, tenant, ticket_types=(("Standard", PRICE),), quota=quota)


def _outcomes(app, account, event_type):
    with app.app_context():
        return list(db.session.scalars(sa.select(ProviderEvent.outcome).where(
            ProviderEvent.type == event_type, ProviderEvent.account == account)))


def _announced(app, tenant, topic, order_id):
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic,
            OutboxRow.payload["order_id"].astext == order_id))


def test_a_card_payment_on_the_hosted_page_issues_the_tickets_once(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0], 2)

    checkout_url = open_checkout(client, tenant, order)
    assert checkout_url.startswith(fake.base_url + "/pay/cs_test_")
    # Following the link again (a reload, a second tab) reuses the same session.
    assert open_checkout(client, tenant, order) == checkout_url
    paid = pay_on_stripe(checkout_url)
    assert paid.status_code == 303
    back = client.get(local_path(paid.headers["Location"]), headers=host_of(tenant))
    assert back.status_code == 303

    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid"
    assert all(ticket.valid for ticket in settled.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.status, attempt.outcome, attempt.amount_minor) == ("succeeded", "paid", 2 * PRICE)
    session = fake.objects[attempt.provider_reference]
    assert session.owner == account  # a direct charge on the organiser's own account
    assert session.body["amount_total"] == 2 * PRICE
    # The webhook and the buyer's return both said "paid": the order was paid and announced once.
    assert _outcomes(app, account, "checkout.session.completed") in (["paid"], ["duplicate"])
    assert [entry.action for entry in settled.history].count("paid") == 1
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1
    page = client.get(f"/checkout/{settled.reservation_id}/done", headers=host_of(tenant))
    assert "your order is confirmed" in page.text


def test_the_same_payment_event_twenty_times_at_once_and_out_of_order_issues_once(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    fake.hold_webhooks()
    pay_on_stripe(open_checkout(client, tenant, order))
    completed = fake.events_of_type("checkout.session.completed")[-1]
    intent_succeeded = fake.events_of_type("payment_intent.succeeded")[-1]
    # The first delivery's re-fetch of the session is slow: the other nineteen arrive meanwhile.
    fake.hang_next(1, seconds=1.0)

    answers = storm(webhooks + CONNECT_PATH, completed)
    late = post_event(webhooks + CONNECT_PATH, intent_succeeded)

    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 19
    assert late.status_code == 200 and late.json()["outcome"] == "duplicate"
    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid"
    assert [entry.action for entry in settled.history].count("paid") == 1
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1
    # The events Stripe still holds arrive last, newest first: nothing more happens.
    for attempt in fake.deliver_pending("reversed"):
        assert attempt.status == 200
    assert order_row(app, tenant, order["id"]).status == "paid"
    assert _announced(app, tenant, "ticketing.order_paid", order["id"]) == 1


def test_a_payment_after_the_deadline_is_paid_back_when_its_places_were_sold(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant, quota=1)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    checkout_url = open_checkout(client, tenant, order)
    lapse(app, tenant, order["id"])
    rival = buy(client, tenant, (event.ticket_type_ids[0], 1), email="bob@example.org")
    assert rival["status"] == "awaiting_payment"

    pay_on_stripe(checkout_url)

    late = order_row(app, tenant, order["id"])
    assert late.status == "expired"
    assert not any(ticket.valid for ticket in late.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.status, attempt.outcome) == ("refunded", "refunded_late")
    refunds = [s.body for s in fake.objects.values() if s.body["object"] == "refund"]
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(attempt.payment_reference, PRICE)]
    assert "refunded_late" in [entry.action for entry in late.history]
    assert _announced(app, tenant, "payments.late_payment_refunded", order["id"]) == 1
    assert order_row(app, tenant, rival["id"]).status == "awaiting_payment"


def test_a_payment_after_the_deadline_is_issued_when_its_places_are_still_free(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant, quota=1)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    checkout_url = open_checkout(client, tenant, order)
    lapse(app, tenant, order["id"])

    pay_on_stripe(checkout_url)

    late = order_row(app, tenant, order["id"])
    assert late.status == "paid"
    assert all(ticket.valid for ticket in late.tickets)
    assert [a.outcome for a in attempts_of(app, tenant, order["id"])] == ["paid_late"]
    # The one place is the late order's again: nobody else can buy it.
    sold_out = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": event.ticket_type_ids[0], "quantity": 1}]})
    assert sold_out.status_code == 409


def test_a_session_is_expired_at_stripe_when_the_reservation_lapses(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    checkout_url = open_checkout(client, tenant, order)
    lapse(app, tenant, order["id"])

    with app.app_context(), tenant_context(tenant):
        assert expire_lapsed_sessions() == 1
        assert expire_lapsed_sessions() == 0

    assert requests.get(checkout_url, timeout=10).status_code == 410
    assert [a.status for a in attempts_of(app, tenant, order["id"])] == ["expired"]
    # The buyer's link now leads back to the order, which says the time to pay has passed.
    again = client.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert again.status_code == 303 and "/checkout/" in again.headers["Location"]


KILLED_WHILE_ISSUING = textwrap.dedent("""
    import os, signal, sys
    from bilten_core.app import create_app
    from bilten_core.kernel import kernel
    from bilten_core.tenancy.context import tenant_context
    from plugins.payments import settlement

    app = create_app()
    with app.app_context():
        tenant = kernel().resolver.load_by_id(sys.argv[1])
        with tenant_context(tenant):
            attempt = settlement.attempt_by_session(sys.argv[2])
            print(settlement.apply_session(attempt, settlement.fetch_session(attempt)), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # dies before the commit
""")


def test_a_paid_order_whose_issuing_process_was_killed_is_repaired_by_reconciliation(
    app, client, fake, database_url, redis_url
):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    fake.hold_webhooks()  # Stripe's word never arrives by webhook
    pay_on_stripe(open_checkout(client, tenant, order))
    [attempt] = attempts_of(app, tenant, order["id"])

    killed = subprocess.run(  # noqa: S603 (a fixed script and ids this test made)
        [sys.executable, "-c", KILLED_WHILE_ISSUING, tenant.id, attempt.provider_reference],
        env={**os.environ, "BILTEN_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
             "STRIPE_SECRET_KEY": fake.secret_key, "STRIPE_API_BASE": fake.base_url},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.strip() == "paid"  # it got as far as issuing, then died
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"

    with app.app_context(), tenant_context(tenant):
        first = reconcile()
        second = reconcile()

    assert (first.checked, first.issued, first.flagged) == (1, 1, 0)
    assert (second.checked, second.issued) == (0, 0)
    repaired = order_row(app, tenant, order["id"])
    assert repaired.status == "paid"
    assert all(ticket.valid for ticket in repaired.tickets)
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1


def test_reconciliation_flags_an_order_issued_as_card_paid_without_a_payment(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    with app.app_context(), tenant_context(tenant):
        db.session.execute(sa.update(Order).where(Order.id == order["id"]).values(status="paid"))
        db.session.commit()
        first = reconcile()
        second = reconcile()
    assert (first.flagged, second.flagged) == (1, 0)
    assert "issued_not_paid" in [entry.action for entry in order_row(app, tenant, order["id"]).history]


def test_refunding_a_ticket_of_a_card_order_pays_it_back_through_stripe(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0], 2)
    pay_on_stripe(open_checkout(client, tenant, order))
    assert order_row(app, tenant, order["id"]).status == "paid"
    admin = staff_headers(app, tenant, "admin")
    ticket = order_row(app, tenant, order["id"]).tickets[0]

    refunded = client.post(f"/api/v1/orders/{order['code']}/refunds", headers=admin,
                           json={"ticket_ids": [ticket.id], "reason": "Cannot come"})

    assert refunded.status_code == 201, refunded.text
    body = refunded.get_json()
    stripe_refund = fake.objects[body["reference"]].body
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (stripe_refund["amount"], stripe_refund["payment_intent"]) == (PRICE, attempt.payment_reference)
    after = order_row(app, tenant, order["id"])
    assert after.status == "partially_refunded"
    assert [t.valid for t in after.tickets] == [False, True]
    # Stripe's refund.created webhook settled the refund that was pending.
    fake.wait_for_deliveries()
    after = order_row(app, tenant, order["id"])
    assert "refund_succeeded" in [entry.action for entry in after.history]
    assert _outcomes(app, account, "refund.created") == ["refund_succeeded"]


def test_stripe_down_when_the_buyer_goes_to_pay_is_a_503_and_the_retry_reuses_the_session(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    fake.fail_next(1, status=500)

    down = client.get(local_path(order["payment_url"]), headers={**host_of(tenant), "Accept": "text/html"})

    assert down.status_code == 503
    assert "try again" in down.text
    assert attempts_of(app, tenant, order["id"]) == []
    assert open_checkout(client, tenant, order).startswith(fake.base_url + "/pay/")
    assert [a.attempt for a in attempts_of(app, tenant, order["id"])] == [1]


def test_another_tenant_cannot_open_or_settle_an_order(app, client, fake, webhooks):
    tenant, _account = card_tenant(app, fake, "cardA")
    other, _other_account = card_tenant(app, fake, "cardB")
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])

    assert client.get(local_path(order["payment_url"]), headers=host_of(other)).status_code == 404
    checkout_url = open_checkout(client, tenant, order)
    returned = client.get(f"/payments/orders/{order['id']}/return?session_id=x", headers=host_of(other))
    assert returned.status_code == 404
    pay_on_stripe(checkout_url)
    assert order_row(app, tenant, order["id"]).status == "paid"
