"""A buyer pays by card on Stripe's hosted page (the fake's) from the storefront on a phone and gets the
tickets; the organiser then refunds one ticket, which Stripe pays back and which stops being valid. Each
page passes WCAG 2.2 AA."""

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
from tests.browser.sign_in import sign_in
from tests.payments.card_helpers import CONNECT_PATH, CONNECT_SECRET, card_tenant, configure_stripe
from tests.payments.stripe_fake import running
from tests.ticketing.event_factory import add_member, create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


@pytest.fixture
def fake(app, site, monkeypatch):
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        stripe_fake.add_webhook_endpoint(f"http://localhost:{site.port}{CONNECT_PATH}", connect=True,
                                         secret=CONNECT_SECRET)
        yield stripe_fake


def _order(app: Flask, tenant, code: str) -> Order:
    with app.app_context(), tenant_context(tenant):
        order = db.session.query(Order).filter_by(code=code).one()
        order.tickets  # noqa: B018 (loaded before the session closes)
        db.session.expunge_all()
        return order


def test_a_buyer_pays_by_card_and_the_organiser_refunds_one_ticket(
    site: Site, app: Flask, browser: Browser, fake
) -> None:
    tenant, _account = card_tenant(app, fake, "cardpay")
    event = create_event(app, tenant, title="Night Market Cooking Class", ticket_types=(("Cook", 4000),))
    base = f"http://{tenant.primary_domain}:{site.port}"
    buyer = browser.new_context(**PHONE)
    try:
        page = buyer.new_page()
        page.goto(f"{base}/events/{event.slug}")
        page.get_by_label("Quantity").first.select_option("2")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_label("Your name").fill("Juno Buyer")
        page.get_by_label("Email address").first.fill("juno@example.org")
        page.get_by_label("Attendee's name").first.fill("Zoe Quill")
        page.get_by_label("Card (Stripe)").check()
        assert_accessible(page, "checkout with a choice of payment on a phone")
        page.get_by_role("button", name="Place order").click()

        page.wait_for_url(re.compile(re.escape(fake.base_url) + r"/pay/cs_test_\w+"))
        expect(page.get_by_text("80.00 EUR", exact=True)).to_be_visible()
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_role("button", name="Pay", exact=True).click()

        page.wait_for_url("**/done")
        main = page.inner_text("main")
        assert "your order is confirmed" in main
        assert "Download tickets (PDF)" in main
        assert_accessible(page, "order confirmed after paying by card on a phone")
        code = re.search(r"Order code:\s*([A-Z0-9]+)", main)
        assert code is not None, main
    finally:
        buyer.close()
    paid = _order(app, tenant, code.group(1))
    assert paid.status == "paid" and all(ticket.valid for ticket in paid.tickets)

    organiser = browser.new_context(**PHONE)
    try:
        page = organiser.new_page()
        sign_in(page, base, add_member(app, tenant, "box_office"))
        order_page = f"{base}/manage/events/{event.id}/orders/{paid.code}"
        page.goto(order_page)
        page.get_by_role("link", name="Refund…").click()
        page.get_by_label("Cook, Zoe Quill, €40.00").check()
        page.get_by_label("Reason").fill("Cannot come after all")
        page.get_by_role("button", name="Review the refund").click()
        page.get_by_role("button", name="Refund €40.00").click()
        page.wait_for_url(order_page)
        assert "€40.00 refunded on order" in page.get_by_role("status").first.inner_text()
        assert_accessible(page, "order page after a card refund on a phone")
    finally:
        organiser.close()

    refunded = _order(app, tenant, paid.code)
    assert refunded.status == "partially_refunded"
    assert [ticket.valid for ticket in refunded.tickets] == [False, True]
    stripe_refunds = [s.body for s in fake.objects.values() if s.body["object"] == "refund"]
    assert [refund["amount"] for refund in stripe_refunds] == [4000]
