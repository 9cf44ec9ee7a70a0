"""Buyers who pay offline are told how: the organiser's bank account and the order's reference for a bank
transfer, or to pay at the entrance, on the order page, on the find-your-order page and in the mail."""

from __future__ import annotations

from datetime import timedelta

import job_probe
import pytest
import sqlalchemy as sa
from flask import Flask

from bilten_core.db import db
from bilten_core.kernel import kernel
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import update_settings
from bilten_core.testing import host_of
from plugins.ticketing.models import TicketType
from plugins.ticketing.orders import Order
from tests.auth.auth_mail import deliver, smtp_inbox
from tests.ticketing.event_factory import BUYER, SiteClient, buy, create_event, staff_headers

BANK = {"account_holder": "Riverside Events e.V.", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
        "bank_name": "Commerzbank", "instructions": "Transfers take up to two working days.\nThank you!"}
SPACED_IBAN = "DE89 3704 0044 0532 0130 00"


@pytest.fixture(autouse=True)
def empty_queues(app: Flask) -> None:
    job_probe.reset(app)


def _shop(app, make_tenant, bank=None):
    tenant = make_tenant("offline")
    if bank:
        with app.app_context(), tenant_context(tenant):
            update_settings("payments_offline", bank)
            db.session.commit()
    return tenant, create_event(app, tenant, starts_in=timedelta(days=3))


def _placed_page(app, client, tenant, order):
    with app.app_context(), tenant_context(tenant):
        reservation_id = db.session.get(Order, order["id"]).reservation_id
    return client.get(f"/checkout/{reservation_id}/done", headers=host_of(tenant))


def _found_page(app, tenant, order):
    visitor = SiteClient(app, tenant)
    return visitor.post("/orders/find", {"email": BUYER, "code": order["code"]}, token=visitor.token_on("/orders/find"))


def test_a_bank_transfer_order_tells_the_buyer_the_account_and_the_reference(app, client, make_tenant, monkeypatch):
    tenant, event = _shop(app, make_tenant, BANK)
    with smtp_inbox(app, monkeypatch) as inbox:
        order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="invoice")
        job_probe.work(app, ["default"])
        deliver(app)
        [mail] = inbox.messages(to=BUYER)

    placed = _placed_page(app, client, tenant, order)
    found = _found_page(app, tenant, order)
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    for shown in (placed.text, found.text, text, html):
        for expected in ("How to pay", "Riverside Events e.V.", SPACED_IBAN, "COBADEFFXXX", "Commerzbank",
                         "Payment reference", order["code"], "Transfers take up to two working days."):
            assert expected in shown, expected
    assert "the invoice is on its way" not in placed.text


def test_without_bank_details_the_buyer_is_told_the_invoice_follows(app, client, make_tenant):
    tenant, event = _shop(app, make_tenant)
    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="invoice")

    placed = _placed_page(app, client, tenant, order)

    assert "the invoice is on its way" in placed.text
    assert "How to pay" not in placed.text


def test_a_door_order_is_told_to_pay_at_the_entrance(app, client, make_tenant):
    tenant, event = _shop(app, make_tenant, BANK)
    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="door")

    placed = _placed_page(app, client, tenant, order)

    assert "Pay at the entrance when you arrive" in placed.text
    assert SPACED_IBAN not in placed.text


def test_a_paid_order_shows_no_payment_instructions(app, client, make_tenant):
    tenant, event = _shop(app, make_tenant, BANK)
    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="invoice")
    admin = staff_headers(app, tenant, "admin")
    paid = client.post(f"/api/v1/orders/{order['code']}/mark-paid", json={}, headers=admin)
    assert paid.status_code == 200, paid.text

    placed = _placed_page(app, client, tenant, order)

    assert "your order is confirmed" in placed.text
    assert "How to pay" not in placed.text and SPACED_IBAN not in placed.text


def test_each_tenant_tells_its_own_bank_details_only(app, client, make_tenant):
    tenant, event = _shop(app, make_tenant, BANK)
    other, other_event = _shop(app, make_tenant)
    order = buy(client, tenant, (event.ticket_type_ids[0], 1), payment_provider="invoice")
    other_order = buy(client, other, (other_event.ticket_type_ids[0], 1), payment_provider="invoice")

    assert SPACED_IBAN not in _placed_page(app, client, other, other_order).text
    # The first tenant's order is unknown on the other's host, whichever page asks.
    assert _found_page(app, other, order).status_code == 404
    with app.app_context(), tenant_context(tenant):
        reservation_id = db.session.get(Order, order["id"]).reservation_id
    assert client.get(f"/checkout/{reservation_id}/done", headers=host_of(other)).status_code == 404


def test_the_demo_tenant_shows_bank_transfer_buyers_an_account(app, client, make_tenant):
    tenant = make_tenant("demo-bank")
    with app.app_context(), tenant_context(tenant):
        kernel(app).plugins.hook_for_tenant("seed_demo_data")(tenant=tenant)
        db.session.commit()
    paid_type = _paid_ticket_types(app, tenant)[0]
    order = buy(client, tenant, (paid_type, 1), payment_provider="invoice")

    placed = _placed_page(app, client, tenant, order)

    assert "How to pay" in placed.text and SPACED_IBAN in placed.text and "Demo Events Ltd" in placed.text


def _paid_ticket_types(app, tenant):
    """The ids of the demo's ticket types that cost something."""
    with app.app_context(), tenant_context(tenant):
        return list(db.session.scalars(sa.select(TicketType.id).where(TicketType.kind == "paid")))
