"""Card fees the organiser passes on to the buyer, shown wherever the buyer looks: beside "Card" at checkout,
on Stripe's hosted page, on the order page, in the confirmation mail and on the invoice, as a service fee
(the platform's, with its tax) and a card payment fee. A paid order keeps the fees it was charged, whatever
the policy says later; a refund pays back tickets, never the fees."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import job_probe
import pytest
import requests
from flask import Flask

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from plugins.payments.platform_fees import EXTENSION, PlatformFees
from tests.auth.auth_mail import deliver, smtp_inbox
from tests.payments.card_helpers import (
    attempts_of,
    card_order,
    card_tenant,
    configure_stripe,
    open_checkout,
    order_row,
    pay_on_stripe,
    served_for_webhooks,
)
from tests.payments.stripe_fake import StripeFake, running
from tests.ticketing.event_factory import (
    SiteClient,
    add_account,
    create_event,
    signed_in_member,
    staff_headers,
)

PRICE = 2500
# Two tickets of 25.00: platform 5 % + 0.50 = 3.00, 19 % tax on it 0.57, so the service fee is 3.57. The card
# fee (1.5 % + 0.25) is on the whole charge: 54.64 leaves the organiser exactly 50.00 after 0.82 + 0.25.
SERVICE_FEE, CARD_FEE, CHARGE = "€3.57", "€1.07", "€54.64"


@pytest.fixture
def fake(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeFake]:
    monkeypatch.setitem(app.extensions, EXTENSION, PlatformFees(
        platform_fee_percent_bp=500, platform_fee_fixed_minor=50, platform_fee_tax_rate_bp=1900,
        provider_fee_percent_bp=150, provider_fee_fixed_minor=25,
    ))
    job_probe.reset(app)
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        yield stripe_fake


def _shop(app, fake, pass_on=True, tax_rate_bp=0):
    tenant, _account = card_tenant(app, fake, "fees")
    with app.app_context(), tenant_context(tenant):
        update_settings("payments", {"pass_fees_to_buyer": pass_on})
        db.session.commit()
    ticket = {"name": "Standard", "kind": "paid", "price_minor": PRICE, "tax_rate_bp": tax_rate_bp}
    return tenant, create_event(app, tenant, ticket_types=(ticket,))


def _checkout_page(client, tenant, type_id):
    reserved = client.post("/api/v1/reservations", headers=host_of(tenant),
                           json={"items": [{"ticket_type_id": type_id, "quantity": 2}]})
    assert reserved.status_code == 201, reserved.text
    page = client.get(f"/checkout/{reserved.get_json()['id']}", headers=host_of(tenant))
    assert page.status_code == 200
    return page.text


def test_the_checkout_page_shows_the_card_fees_beside_paying_by_card(app, client, fake):
    tenant, event = _shop(app, fake)

    page = _checkout_page(client, tenant, event.ticket_type_ids[0])

    assert 'aria-describedby="pay-stripe-fees"' in page
    assert f"Plus Service fee {SERVICE_FEE}, Card payment fee {CARD_FEE}: {CHARGE} in all." in page
    # Paying by bank transfer adds nothing, so nothing is said beside it.
    assert 'id="pay-invoice"' in page and 'id="pay-invoice-fees"' not in page


def test_absorbed_fees_are_not_shown_to_the_buyer(app, client, fake):
    tenant, event = _shop(app, fake, pass_on=False)

    page = _checkout_page(client, tenant, event.ticket_type_ids[0])

    assert 'id="pay-stripe"' in page
    assert "Service fee" not in page and "pay-stripe-fees" not in page


def test_a_paid_order_shows_and_invoices_the_fees_it_was_charged(app, client, fake, monkeypatch):
    tenant, event = _shop(app, fake, tax_rate_bp=700)
    with served_for_webhooks(app, fake), smtp_inbox(app, monkeypatch) as inbox:
        # Accounts are the platform's: an address of this test's own, so signing in as the buyer below is ours.
        buyer_email = f"fees-{uuid.uuid4().hex[:8]}@example.org"
        order = card_order(client, tenant, event.ticket_type_ids[0], 2, email=buyer_email)
        assert order["buyer_total_minor"] == 5464
        assert [(fee["label"], fee["amount_minor"], fee["tax_minor"]) for fee in order["fees"]] == [
            ("Service fee", 357, 57), ("Card payment fee", 107, 0)]
        waiting = client.get(f"/checkout/{order_row(app, tenant, order['id']).reservation_id}/done",
                             headers=host_of(tenant))
        assert SERVICE_FEE in waiting.text and CHARGE in waiting.text
        checkout_url = open_checkout(client, tenant, order)
        hosted = requests.get(checkout_url, timeout=10).text
        assert "Service fee" in hosted and "Card payment fee" in hosted
        pay_on_stripe(checkout_url)
        fake.wait_for_deliveries()
        paid = order_row(app, tenant, order["id"])
        assert paid.status == "paid"
        [attempt] = attempts_of(app, tenant, order["id"])
        assert (attempt.amount_minor, attempt.application_fee_minor, attempt.fee_tax_minor) == (5464, 357, 57)

        # The platform changes its fees afterwards: the order still shows what it was charged.
        monkeypatch.setitem(app.extensions, EXTENSION, PlatformFees(platform_fee_percent_bp=900))
        page = client.get(f"/checkout/{paid.reservation_id}/done", headers=host_of(tenant)).text
        for shown in ("Tickets", "€50.00", "Service fee", SERVICE_FEE, "Card payment fee", CARD_FEE, CHARGE):
            assert shown in page, shown
        add_account(app, buyer_email)
        buyer = SiteClient(app, tenant)
        buyer.sign_in(buyer_email)
        assert CHARGE in buyer.get("/my/tickets").text

        job_probe.work(app, ["default"])
        deliver(app)
        [confirmation] = [m for m in inbox.messages(to=buyer_email) if m["Subject"].startswith("Your tickets")]
        text = confirmation.get_body(preferencelist=("plain",)).get_content()
        assert f"Service fee: {SERVICE_FEE}" in text and f"Card payment fee: {CARD_FEE}" in text
        assert f"Total: {CHARGE}" in text

    staff_page = signed_in_member(app, tenant, "box_office").get(f"/manage/events/{event.id}/orders/{order['code']}")
    assert f"Service fee: {SERVICE_FEE}<br>Card payment fee: {CARD_FEE}" in staff_page.text

    finance = staff_headers(app, tenant, "finance")
    [invoice] = client.get("/api/v1/invoices?kind=invoice", headers=finance).get_json()
    assert invoice["total_minor"] == 5464
    fee_lines = [(line["description"], line["total_minor"], line["tax_minor"], line["rate_bp"])
                 for line in invoice["lines"] if line["description"] != "Standard"]
    assert fee_lines == [("Service fee", 357, 57, 1900), ("Card payment fee", 107, 0, 0)]
    assert {rate["rate_bp"]: rate["tax_minor"] for rate in invoice["tax_breakdown"]} == {0: 0, 700: 328, 1900: 57}

    # A refund of part of the order pays back ticket money only: the credit note has no share at the fees' rates.
    refunded = client.post(f"/api/v1/orders/{order['code']}/refunds", headers=staff_headers(app, tenant, "admin"),
                           json={"amount_minor": 1000, "reason": "Goodwill"})
    assert refunded.status_code == 201, refunded.text
    job_probe.work(app, ["default"])
    [note] = client.get("/api/v1/invoices?kind=credit_note", headers=finance).get_json()
    assert note["total_minor"] == -1000
    assert [(line["rate_bp"], line["total_minor"]) for line in note["lines"]] == [(700, -1000)]


def test_an_order_still_to_pay_shows_the_fees_of_its_open_payment_not_another_tenants(app, client, fake):
    tenant, event = _shop(app, fake)
    other, other_event = _shop(app, fake, pass_on=False)
    order = card_order(client, tenant, event.ticket_type_ids[0], 2)
    other_order = card_order(client, other, other_event.ticket_type_ids[0], 2)

    other_page = client.get(f"/checkout/{order_row(app, other, other_order['id']).reservation_id}/done",
                            headers=host_of(other))
    assert other_page.status_code == 200 and "Service fee" not in other_page.text
    # The first tenant's order is not found on the other tenant's host at all.
    reservation = order_row(app, tenant, order["id"]).reservation_id
    assert client.get(f"/checkout/{reservation}/done", headers=host_of(other)).status_code == 404
    assert SERVICE_FEE in client.get(f"/checkout/{reservation}/done", headers=host_of(tenant)).text
