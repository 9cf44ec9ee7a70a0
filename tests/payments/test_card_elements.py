"""Card payments on Stripe's embedded Payment Element, end to end against the fake Stripe.

The browser part (Stripe.js confirming the PaymentIntent) is played by the real stripe library calling
the fake's confirm endpoint with Stripe's test payment methods, as Stripe.js would; the bank's 3-D
Secure page is the fake's. A paid intent issues the order once however often Stripe says so, a
declined card can be tried again on the same intent, a late payment is paid back, a killed return is
repaired by reconciliation, and another tenant reaches none of it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import stripe
from flask import Flask
from flask.testing import FlaskClient
from pydantic import SecretStr

from bilten_core.db import db
from bilten_core.outbox import OutboxRow
from bilten_core.tenancy.context import TenantInfo, tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from plugins.payments.models import ProviderEvent
from plugins.payments.reconciliation import expire_lapsed_sessions, reconcile
from plugins.payments.stripe_settings import EXTENSION, StripeSettings
from tests.payments.card_helpers import (
    CONNECT_PATH,
    CONNECT_SECRET,
    attempts_of,
    card_order,
    card_tenant,
    lapse,
    local_path,
    order_row,
    served_for_webhooks,
    storm,
)
from tests.payments.report_helpers import platform_fee_policy
from tests.payments.stripe_fake import StripeFake, running
from tests.payments.stripe_fake import client as stripe_api
from tests.ticketing.event_factory import buy, create_event

PRICE = 2500
PUBLISHABLE_KEY = "pk_test_elements0page"
# 2 % + 0.49 of 25.00 (report_helpers.platform_fee_policy).
PLATFORM_FEE = 99


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    with running() as stripe_fake:
        monkeypatch.setitem(app.extensions, EXTENSION, StripeSettings(
            secret_key=SecretStr(stripe_fake.secret_key), connect_webhook_secret=SecretStr(CONNECT_SECRET),
            api_base=stripe_fake.base_url, timeout_seconds=10, max_network_retries=0,
            checkout_mode="elements", publishable_key=PUBLISHABLE_KEY, js_url=stripe_fake.base_url + "/v3/",
        ))
        platform_fee_policy(app, monkeypatch)
        yield stripe_fake


@pytest.fixture
def webhooks(app: Flask, fake: StripeFake) -> Iterator[str]:
    with served_for_webhooks(app, fake) as base:
        yield base


def _event(app: Flask, tenant: TenantInfo, quota: int = 10) -> Any:
    return create_event(app, tenant, ticket_types=(("Standard", PRICE),), quota=quota)


def _card_page(http: FlaskClient, tenant: TenantInfo, order: dict[str, Any]) -> Any:
    page = http.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert page.status_code == 200, page.text
    return page


def _intent_of(fake: StripeFake, app: Flask, tenant: TenantInfo, order_id: str) -> dict[str, Any]:
    [attempt] = attempts_of(app, tenant, order_id)
    body: dict[str, Any] = fake.objects[attempt.provider_reference].body
    return body


def _confirm(fake: StripeFake, account: str, intent_id: str, method: str, return_url: str) -> Any:
    """What Stripe.js's confirmPayment asks of Stripe once the buyer typed their card."""
    return stripe_api(fake, account=account).v1.payment_intents.confirm(
        intent_id, {"payment_method": method, "return_url": return_url})


def _return_url(order_id: str) -> str:
    return f"http://shop.invalid/payments/orders/{order_id}/card/return"


def _come_back(http: FlaskClient, tenant: TenantInfo, order_id: str, intent_id: str) -> Any:
    return http.get(f"/payments/orders/{order_id}/card/return?payment_intent={intent_id}"
                    "&redirect_status=succeeded", headers=host_of(tenant))


def _outcomes(app: Flask, account: str, event_type: str) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(sa.select(ProviderEvent.outcome).where(
            ProviderEvent.type == event_type, ProviderEvent.account == account)))


def _announced(app: Flask, tenant: TenantInfo, topic: str, order_id: str) -> int:
    with app.app_context():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(OutboxRow).where(
            OutboxRow.tenant_id == tenant.id, OutboxRow.name == topic,
            OutboxRow.payload["order_id"].astext == order_id)) or 0)


def test_paying_on_the_card_element_through_3d_secure_issues_the_tickets_once(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    assert order["payment_url"].endswith(f"/payments/orders/{order['id']}/card")

    page = _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    assert fake.objects[intent["id"]].owner == account  # a direct charge on the organiser's own account
    assert (intent["amount"], intent["application_fee_amount"]) == (PRICE, PLATFORM_FEE)
    assert intent["metadata"]["bilten_order_id"] == order["id"]
    assert intent["client_secret"] in page.text and PUBLISHABLE_KEY in page.text
    assert fake.base_url + "/v3/" in page.text and "card_element.js" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    # A reload (or a second tab) shows the same intent.
    assert intent["client_secret"] in _card_page(client, tenant, order).text
    assert len(attempts_of(app, tenant, order["id"])) == 1

    confirmed = _confirm(fake, account, intent["id"], "pm_card_authenticationRequired", _return_url(order["id"]))
    assert confirmed.status == "requires_action"
    # Back before the bank's check (Stripe.js follows it itself): the return sends the buyer to the bank.
    to_bank = _come_back(client, tenant, order["id"], intent["id"])
    assert to_bank.status_code == 303 and to_bank.headers["Location"] == f"{fake.base_url}/authorise/{intent['id']}"
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"
    bank = requests.post(to_bank.headers["Location"], data={"action": "authorise"}, allow_redirects=False,
                         timeout=30)
    assert bank.status_code == 303
    back = client.get(local_path(bank.headers["Location"]), headers=host_of(tenant))
    assert back.status_code == 303 and "/checkout/" in back.headers["Location"]
    assert _come_back(client, tenant, order["id"], intent["id"]).status_code == 303  # a reload of the return

    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid"
    assert all(ticket.valid for ticket in settled.tickets)
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.status, attempt.outcome, attempt.payment_reference) == ("succeeded", "paid", intent["id"])
    assert [entry.action for entry in settled.history].count("paid") == 1
    fake.wait_for_deliveries()
    assert _outcomes(app, account, "payment_intent.succeeded") in (["paid"], ["duplicate"])
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1
    # Paid: the card page now leads to the order.
    again = client.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert again.status_code == 303 and "/checkout/" in again.headers["Location"]


def test_a_declined_card_is_shown_and_the_buyer_pays_with_another_on_the_same_intent(app, client, fake):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])

    with pytest.raises(stripe.CardError):
        _confirm(fake, account, intent["id"], "pm_card_chargeDeclined", _return_url(order["id"]))
    back = _come_back(client, tenant, order["id"], intent["id"])
    assert back.status_code == 303 and back.headers["Location"].endswith(f"/payments/orders/{order['id']}/card")
    page = _card_page(client, tenant, order)
    assert "Your card was declined, so nothing was charged." in page.text
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"

    _confirm(fake, account, intent["id"], "pm_card_visa", _return_url(order["id"]))
    assert _come_back(client, tenant, order["id"], intent["id"]).status_code == 303

    assert order_row(app, tenant, order["id"]).status == "paid"
    assert [(a.attempt, a.provider_reference, a.status) for a in attempts_of(app, tenant, order["id"])] == [
        (1, intent["id"], "succeeded")]


def test_a_failed_bank_check_says_so_on_the_card_page(app, client, fake):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    _confirm(fake, account, intent["id"], "pm_card_authenticationRequired", _return_url(order["id"]))

    bank = requests.post(f"{fake.base_url}/authorise/{intent['id']}", data={"action": "fail"},
                         allow_redirects=False, timeout=30)
    back = client.get(local_path(bank.headers["Location"]), headers=host_of(tenant))

    assert back.status_code == 303
    assert "Your bank did not confirm this payment" in _card_page(client, tenant, order).text
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"


def test_payment_intent_succeeded_twenty_times_at_once_issues_once(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    fake.hold_webhooks()
    _confirm(fake, account, intent["id"], "pm_card_visa", _return_url(order["id"]))
    succeeded = fake.events_of_type("payment_intent.succeeded")[-1]
    # The first delivery's re-fetch of the intent is slow: the other nineteen arrive meanwhile.
    fake.hang_next(1, seconds=1.0)

    answers = storm(webhooks + CONNECT_PATH, succeeded)

    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] + [True] * 19
    assert _outcomes(app, account, "payment_intent.succeeded") == ["paid"]
    settled = order_row(app, tenant, order["id"])
    assert settled.status == "paid"
    assert [entry.action for entry in settled.history].count("paid") == 1
    # The buyer's return comes last and finds it done.
    assert _come_back(client, tenant, order["id"], intent["id"]).status_code == 303
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1


def test_a_payment_after_the_deadline_is_paid_back_when_its_place_was_sold(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant, quota=1)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    lapse(app, tenant, order["id"])
    rival = buy(client, tenant, (event.ticket_type_ids[0], 1), email="bob@example.org")

    _confirm(fake, account, intent["id"], "pm_card_visa", _return_url(order["id"]))
    fake.wait_for_deliveries()

    late = order_row(app, tenant, order["id"])
    assert late.status == "expired"
    [attempt] = attempts_of(app, tenant, order["id"])
    assert (attempt.status, attempt.outcome) == ("refunded", "refunded_late")
    refunds = [s.body for s in fake.objects.values() if s.body["object"] == "refund"]
    assert [(r["payment_intent"], r["amount"]) for r in refunds] == [(intent["id"], PRICE)]
    assert _announced(app, tenant, "payments.late_payment_refunded", order["id"]) == 1
    assert order_row(app, tenant, rival["id"]).status == "awaiting_payment"


def test_an_intent_is_cancelled_at_stripe_when_the_reservation_lapses(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    lapse(app, tenant, order["id"])

    with app.app_context(), tenant_context(tenant):
        assert expire_lapsed_sessions() == 1
        assert expire_lapsed_sessions() == 0

    assert _intent_of(fake, app, tenant, order["id"])["status"] == "canceled"
    assert [a.status for a in attempts_of(app, tenant, order["id"])] == ["expired"]
    again = client.get(local_path(order["payment_url"]), headers=host_of(tenant))
    assert again.status_code == 303 and "/checkout/" in again.headers["Location"]


KILLED_WHILE_RETURNING = textwrap.dedent("""
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
            print(settlement.apply_intent(attempt, settlement.fetch_intent(attempt)), flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # dies before the commit
""")


def test_a_return_killed_before_its_commit_is_repaired_by_reconciliation(app, client, fake, database_url, redis_url):
    tenant, account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    fake.hold_webhooks()  # Stripe's word never arrives by webhook
    _confirm(fake, account, intent["id"], "pm_card_visa", _return_url(order["id"]))

    killed = subprocess.run(  # noqa: S603 (a fixed script and ids this test made)
        [sys.executable, "-c", KILLED_WHILE_RETURNING, tenant.id, intent["id"]],
        env={**os.environ, "BILTEN_ENV": "test", "DATABASE_URL": database_url, "REDIS_URL": redis_url,
             "STRIPE_SECRET_KEY": fake.secret_key, "STRIPE_API_BASE": fake.base_url},
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert killed.stdout.strip() == "paid"
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"

    with app.app_context(), tenant_context(tenant):
        first = reconcile()
        second = reconcile()

    assert (first.checked, first.issued, first.flagged) == (1, 1, 0)
    assert (second.checked, second.issued) == (0, 0)
    assert order_row(app, tenant, order["id"]).status == "paid"
    assert _announced(app, tenant, "ticketing.tickets_issued", order["id"]) == 1


def test_stripe_down_on_the_card_page_is_a_503_and_the_retry_reuses_the_key(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])
    fake.fail_next(1, status=500)

    down = client.get(local_path(order["payment_url"]), headers={**host_of(tenant), "Accept": "text/html"})

    assert down.status_code == 503 and "try again" in down.text
    assert attempts_of(app, tenant, order["id"]) == []
    _card_page(client, tenant, order)
    assert [a.attempt for a in attempts_of(app, tenant, order["id"])] == [1]


def test_the_hosted_page_stays_the_default_without_a_publishable_key(app, client, fake, monkeypatch):
    hosted = app.extensions[EXTENSION].model_copy(update={"publishable_key": None})
    monkeypatch.setitem(app.extensions, EXTENSION, hosted)
    tenant, _account = card_tenant(app, fake)
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])

    assert order["payment_url"].endswith(f"/payments/orders/{order['id']}/pay")
    card = client.get(f"/payments/orders/{order['id']}/card", headers=host_of(tenant))
    assert card.status_code == 303 and card.headers["Location"].endswith("/pay")


def test_another_tenant_cannot_open_settle_or_claim_an_order_paid_on_the_element(app, client, fake, webhooks):
    tenant, account = card_tenant(app, fake, "elemA")
    other, other_account = card_tenant(app, fake, "elemB")
    event = _event(app, tenant)
    order = card_order(client, tenant, event.ticket_type_ids[0])

    assert client.get(local_path(order["payment_url"]), headers=host_of(other)).status_code == 404
    _card_page(client, tenant, order)
    intent = _intent_of(fake, app, tenant, order["id"])
    [attempt] = attempts_of(app, tenant, order["id"])
    # Tenant B pays an intent of its own account that claims to be A's attempt: nothing happens to A's order.
    forged = stripe_api(fake, account=other_account).v1.payment_intents.create({
        "amount": PRICE, "currency": "eur", "payment_method": "pm_card_visa", "confirm": True,
        "metadata": {"bilten_attempt_id": attempt.id, "bilten_order_id": order["id"]},
    })
    assert forged.status == "succeeded"
    fake.wait_for_deliveries()
    assert _outcomes(app, other_account, "payment_intent.succeeded") == ["unknown_payment"]
    assert client.get(f"/payments/orders/{order['id']}/card/return?payment_intent={intent['id']}",
                      headers=host_of(other)).status_code == 404
    assert order_row(app, tenant, order["id"]).status == "awaiting_payment"

    _confirm(fake, account, intent["id"], "pm_card_visa", _return_url(order["id"]))
    assert _come_back(client, tenant, order["id"], intent["id"]).status_code == 303
    assert order_row(app, tenant, order["id"]).status == "paid"


def test_the_card_form_shows_the_fees_passed_on_and_charges_them(app, client, fake):
    tenant, _account = card_tenant(app, fake)
    with app.app_context(), tenant_context(tenant):
        update_settings("payments", {"pass_fees_to_buyer": True})
        db.session.commit()
    order = card_order(client, tenant, _event(app, tenant).ticket_type_ids[0])

    page = _card_page(client, tenant, order).text

    # 25.00 with 2 % + 0.49 (0.99) to the platform, grossed up for the card fee: 26.64 in all.
    assert "Tickets €25.00 · Service fee €0.99 · Card payment fee €0.65" in page
    assert "Pay €26.64" in page
    assert _intent_of(fake, app, tenant, order["id"])["amount"] == 2664
