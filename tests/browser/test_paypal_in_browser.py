"""A buyer chooses PayPal at the storefront's checkout on a phone, approves on PayPal's page (the fake's)
and comes back to the order page, which shows the order paid. The shop's pages pass WCAG 2.2 AA."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser, expect

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from plugins.ticketing.orders import Order
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.payments.paypal_fake import PayPalFake
from tests.payments.paypal_helpers import configure_paypal, paypal_tenant
from tests.ticketing.event_factory import create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


@pytest.fixture
def fake(app, site, monkeypatch):
    running = PayPalFake().start()
    configure_paypal(app, running, monkeypatch)
    yield running
    running.stop()


def test_a_buyer_pays_with_paypal_on_a_phone(site: Site, app: Flask, browser: Browser, fake) -> None:
    tenant, paypal_app = paypal_tenant(app, fake, "paypalweb")
    event = create_event(app, tenant, title="Harbour Lights Boat Tour", ticket_types=(("Deck", 3000),))
    base = f"http://{tenant.primary_domain}:{site.port}"
    buyer = browser.new_context(**PHONE)
    try:
        page = buyer.new_page()
        page.goto(f"{base}/events/{event.slug}")
        page.get_by_label("Quantity").first.select_option("2")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_label("Your name").fill("Pia Buyer")
        page.get_by_label("Email address").first.fill("pia@example.org")
        page.get_by_label("PayPal", exact=True).check()
        assert_accessible(page, "checkout with PayPal chosen on a phone")
        page.get_by_role("button", name="Place order").click()

        page.wait_for_url(re.compile(re.escape(fake.base) + r"/checkoutnow\?token=\w+"))
        expect(page.get_by_text("60.00 EUR")).to_be_visible()
        page.get_by_role("button", name="Pay with PayPal").click()

        page.wait_for_url("**/done")
        main = page.inner_text("main")
        assert "your order is confirmed" in main
        assert "Download tickets (PDF)" in main
        assert_accessible(page, "order paid with PayPal on a phone")
        code = re.search(r"Order code:\s*([A-Z0-9]+)", main)
        assert code is not None, main
    finally:
        buyer.close()
    with app.app_context(), tenant_context(tenant):
        order = db.session.query(Order).filter_by(code=code.group(1)).one()
        assert (order.status, order.payment_provider) == ("paid", "paypal")
        assert all(ticket.valid for ticket in order.tickets)
    [paypal_order] = fake.orders.values()
    assert (paypal_order.client_id, paypal_order.status) == (paypal_app.client_id, "COMPLETED")
