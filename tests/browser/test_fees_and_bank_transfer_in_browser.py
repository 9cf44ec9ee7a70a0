"""On a phone, a buyer sees the card fees the organiser passes on before choosing to pay by card and on the
order once paid; a buyer who pays by bank transfer is shown the account and the reference. Each page passes
WCAG 2.2 AA."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page

from bilten_core.db import db
from bilten_core.tenancy.context import tenant_context
from bilten_core.tenant_settings import update_settings
from plugins.payments.platform_fees import EXTENSION, PlatformFees
from tests.browser.accessibility_checks import assert_accessible
from tests.browser.conftest import PHONE
from tests.payments.card_helpers import CONNECT_PATH, CONNECT_SECRET, card_tenant, configure_stripe
from tests.payments.stripe_fake import running
from tests.ticketing.event_factory import create_event

if TYPE_CHECKING:
    from tests.browser.conftest import Site


@pytest.fixture
def fake(app, site, monkeypatch):
    monkeypatch.setitem(app.extensions, EXTENSION, PlatformFees(
        platform_fee_percent_bp=500, platform_fee_fixed_minor=50, provider_fee_percent_bp=150,
        provider_fee_fixed_minor=25,
    ))
    with running() as stripe_fake:
        configure_stripe(app, stripe_fake, monkeypatch)
        stripe_fake.add_webhook_endpoint(f"http://localhost:{site.port}{CONNECT_PATH}", connect=True,
                                         secret=CONNECT_SECRET)
        yield stripe_fake


@contextmanager
def _buyer_at_checkout(site: Site, app: Flask, browser: Browser, fake, name: str, namespace: str,
                       values: dict) -> Iterator[Page]:
    """A phone at the checkout of two 25.00 tickets of a new card tenant whose ``namespace`` settings are ``values``."""
    tenant, _account = card_tenant(app, fake, name)
    with app.app_context(), tenant_context(tenant):
        update_settings(namespace, values)
        db.session.commit()
    event = create_event(app, tenant, title="Harbour Lights Tour", ticket_types=(("Deck", 2500),))
    buyer = browser.new_context(**PHONE)
    try:
        page = buyer.new_page()
        page.goto(f"http://{tenant.primary_domain}:{site.port}/events/{event.slug}")
        page.get_by_label("Quantity").first.select_option("2")
        page.get_by_role("button", name="Choose these tickets").click()
        page.wait_for_url("**/checkout/**")
        page.get_by_label("Your name").fill("Juno Buyer")
        page.get_by_label("Email address").first.fill("juno@example.org")
        yield page
    finally:
        buyer.close()


def test_a_card_buyer_sees_the_fees_before_choosing_and_on_the_paid_order(
    site: Site, app: Flask, browser: Browser, fake
) -> None:
    with _buyer_at_checkout(site, app, browser, fake, "feepage", "payments", {"pass_fees_to_buyer": True}) as page:
        card = page.get_by_label("Card (Stripe)")
        # 5 % + 0.50 on 50.00 is 3.00; the card fee on the whole charge makes it 54.06 in all.
        assert card.get_attribute("aria-describedby") == "pay-stripe-fees"
        fees = page.locator("#pay-stripe-fees").inner_text()
        assert fees == "Plus Service fee €3.00, Card payment fee €1.06: €54.06 in all."
        card.check()
        assert_accessible(page, "checkout with card fees passed on, on a phone")
        page.get_by_role("button", name="Place order").click()

        page.wait_for_url(re.compile(re.escape(fake.base_url) + r"/pay/cs_test_\w+"))
        assert "54.06 EUR" in page.inner_text("body")
        page.get_by_label("Card number").fill("4242 4242 4242 4242")
        page.get_by_role("button", name="Pay", exact=True).click()

        page.wait_for_url("**/done")
        main = page.inner_text("main")
        assert "your order is confirmed" in main
        for shown in ("Tickets\n€50.00", "Service fee\n€3.00", "Card payment fee\n€1.06", "Total\n€54.06"):
            assert shown in main, shown
        assert_accessible(page, "paid order with its fees, on a phone")


def test_a_bank_transfer_buyer_is_shown_the_account_and_the_reference(
    site: Site, app: Flask, browser: Browser, fake
) -> None:
    bank = {"account_holder": "Harbour Tours Ltd", "iban": "GB82WEST12345698765432", "bank_name": "Westbank",
            "instructions": "Please pay within seven days."}
    with _buyer_at_checkout(site, app, browser, fake, "transfer", "payments_offline", bank) as page:
        page.get_by_label("Invoice (pay later)").check()
        page.get_by_role("button", name="Place order").click()

        page.wait_for_url("**/done")
        how = page.get_by_role("region", name="How to pay")
        text = how.inner_text()
        code = re.search(r"Order code:\s*([A-Z0-9]+)", page.inner_text("main"))
        assert code is not None
        for shown in ("Harbour Tours Ltd", "GB82 WEST 1234 5698 7654 32", "Westbank", code.group(1),
                      "Please pay within seven days."):
            assert shown in text, shown
        assert_accessible(page, "bank transfer instructions on a phone")
